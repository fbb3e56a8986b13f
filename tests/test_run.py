"""The Run object owns a run folder; folders written by the code before the redesign still load.

``tests/fixtures/before-redesign/`` is a workspace written by pairlab at commit 1cb6c30 (before ``Run`` existed):
``python -m pairlab compose synthfaces --sf-count 60 --sf-size 64 --recipe alpha-paired --alpha 0.5 --n 12
--n-test 4 --name old-comp``, ``python -m pairlab train old-comp --name old-run --set image_size=32,load_size=36,
ngf=4,ndf=4,n_blocks=1,max_iters=4,log_every=1,save_every=2,sample_every=4`` and ``python -m pairlab evaluate
old-run --metrics gt_l1,gt_mse``. Its training losses are in ``metrics.jsonl`` and its scores in ``metrics.json``
(now ``losses.jsonl`` / ``scores.json``); its run.json points at the composition's old absolute path (a moved
workspace). Only the periodic copy of latest.pt was left out, to keep the fixture small.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pairlab.errors import UserError
from pairlab.train.run import Run, finished_runs, format_eta, list_runs, open_run

FIXTURE = Path(__file__).parent / "fixtures" / "before-redesign"


@pytest.fixture
def old_home(home):
    shutil.copytree(FIXTURE, home)
    return home


def test_an_old_run_folder_reads_through_run(old_home):
    run = open_run("old-run")
    assert run.is_run() and run.has_config() and run.state() == "done"
    cfg = run.config()
    assert (cfg.model, cfg.image_size, cfg.ngf, cfg.max_iters) == ("cyclegan", 32, 4, 4)
    assert run.info()["composition"].endswith("compositions/old-comp")
    losses = run.losses()
    assert [line["iter"] for line in losses] == [1, 2, 3, 4] and run.losses_path.name == "metrics.jsonl"
    assert {"G", "D_A", "D_B", "cycle_A"} <= set(losses[0])
    scores = run.scores()
    assert run.scores_path.name == "metrics.json" and scores["run"] == "old-run"
    assert scores["directions"]["AtoB"]["metrics"]["gt_l1"]["mean"] == pytest.approx(0.16799460712960962)
    assert run.per_image_scores() is not None
    assert run.latest_sample().name == "iter_000004.png"
    assert "done at iteration 4/4" in run.log_tail(1)
    assert run.latest_checkpoint() == run.checkpoint("latest") == run.path / "checkpoints" / "latest.pt"
    with pytest.raises(UserError, match="has no checkpoint iter_000002.pt"):
        run.checkpoint(2)
    d = run.describe()
    assert (d["id"], d["model"], d["state"], d["iteration"], d["total"], d["composition"]) == (
        "old-run", "cyclegan", "done", 4, 4, "old-comp")
    assert d["preset"] == "(command line)" and not d["queued"] and not d["resumable"]
    assert [r.id for r in finished_runs()] == ["old-run"] and list_runs(state="failed") == []


def test_an_old_run_evaluates_and_resumes_under_the_new_names(old_home):
    from pairlab.eval.evaluate import evaluate_runs
    from pairlab.train.loop import train_command

    run = open_run("old-run")
    old = run.scores()["directions"]["AtoB"]["metrics"]["gt_l1"]["mean"]
    (res,) = evaluate_runs(["old-run"], metrics=["gt_l1"], device="cpu")
    assert res["ok"], res
    # the same checkpoint on the same test images (found in this workspace: the recorded path is gone)
    assert res["metrics"]["gt_l1"]["mean"] == pytest.approx(old, rel=1e-4)
    assert run.scores_path.name == "scores.json" and not (run.path / "metrics.json").exists()
    assert run.scores()["directions"]["AtoB"]["metrics"]["gt_l1"]["mean"] == pytest.approx(old, rel=1e-4)

    # the same command again with the new code resumes it (its config compares equal through TrainConfig), finds
    # it finished, and the old losses move to losses.jsonl
    comp = old_home / "compositions" / "old-comp"
    settings = ["image_size=32", "load_size=36", "ngf=4", "ndf=4", "n_blocks=1", "max_iters=4", "log_every=1",
                "save_every=2", "sample_every=4"]
    assert train_command(comp, "cyclegan", "cpu-demo-64", settings, name="old-run") == run.path
    assert run.state() == "done" and run.status()["iteration"] == 4
    assert run.losses_path.name == "losses.jsonl" and not (run.path / "metrics.jsonl").exists()
    assert [line["iter"] for line in run.losses()] == [1, 2, 3, 4]
    with pytest.raises(UserError, match="started with different settings"):
        train_command(comp, "cyclegan", "cpu-demo-64", settings[:-1] + ["max_iters=6"], name="old-run")


def test_an_old_composition_manifest_loads(old_home):
    from pairlab.data.composition import Composition
    from pairlab.data.compose import load_manifest

    comp = Composition.open(old_home / "compositions" / "old-comp")
    assert len(comp.files["trainA"]) == 12 and comp.n_paired == 6
    m = load_manifest(old_home / "compositions" / "old-comp")
    assert m["recipe"]["alpha"] == 0.5 and m["counts"]["paired"] == 6
    assert m["alpha_measured"] == 0.5 and m["alpha_target"] == 0.5  # the old manifest's measured 'alpha' is read


def test_run_create_status_losses_and_scores(tmp_path):
    run = Run.create(tmp_path / "r1", config={"model": "pix2pix", "max_iters": 3}, info={"composition": "/x/c"},
                     status={"state": "running", "iteration": 1, "total": 3})
    assert run.samples_dir.is_dir() and run.checkpoints_dir.is_dir() and run.is_run()
    assert run.config().model == "pix2pix" and run.composition() == "/x/c"
    status = run.update_status(iteration=2, progress=2 / 3)
    assert status["iteration"] == 2 and status["state"] == "running" and "updated" in status
    assert run.status() == status
    run.reset_losses()
    for i in (1, 2, 3):
        run.append_losses({"iter": i, "G": float(i)})
    with open(run.losses_path, "a") as fh:
        fh.write('{"iter": 4, "G"')  # a torn line being written
    assert [m["iter"] for m in run.losses()] == [1, 2, 3]
    run.truncate_losses(2)
    assert [m["iter"] for m in run.losses()] == [1, 2]
    assert run.scores() is None
    run.write_scores({"directions": {}})
    assert run.scores() == {"directions": {}} and run.scores_path.name == "scores.json"
    run.log("hello")
    assert run.log_tail().endswith("hello") and run.log_signature() is not None
    assert run.sample_path(7).name == "iter_000007.png" and run.latest_sample() is None
    with pytest.raises(UserError, match="has no checkpoints yet"):
        run.checkpoint()


def test_a_queued_run_without_status_and_list_order(tmp_path):
    root = tmp_path / "runs"
    a = Run.create(root / "a", status={"state": "failed", "error": "Something broke."})
    a.write_info({"created": 100.0})
    a.write_config({"model": "cyclegan"})
    b = Run(root / "b")
    b.path.mkdir(parents=True)
    b.write_job({"config": {"model": "hybrid"}, "composition": "/c/x", "composition_name": "x", "model": "hybrid",
                 "preset": "cpu-demo-64", "seed": 1, "created": 200.0})
    (root / ".tmp-c").mkdir()  # a half-made folder is not a run
    assert b.state() == "queued" and b.composition() == "/c/x"
    assert [r.id for r in list_runs(root)] == ["b", "a"]
    assert [r.id for r in list_runs(root, state=("failed",))] == ["a"]
    d = a.describe()
    assert d["resumable"] and d["error"] == "Something broke." and d["eta_s"] is None
    assert b.describe()["queued"] and b.describe()["seed"] == 1
    with pytest.raises(UserError, match="There is no run folder"):
        open_run(tmp_path / "missing")
    assert format_eta(None) == "" and format_eta(75) == "1m15s"
    # the status file is plain JSON
    assert json.loads((root / "a" / "status.json").read_text())["state"] == "failed"


def test_display_name_is_short_and_says_model_recipe_seed_and_hash(tmp_path):
    from pairlab.data.recipes import Recipe

    comp = tmp_path / "compositions" / "synthfaces-n1500-128px-seed0-eyeglasses-pseudo-paired0.50-n60-s0"
    comp.mkdir(parents=True)
    recipe = Recipe(kind="pseudo", augmentation="pseudo-paired", pseudo_alpha=0.5, n=60)
    (comp / "manifest.json").write_text(json.dumps({"recipe": recipe.to_dict()}))
    long_id = f"{comp.name}-cyclegan-cpu-demo-64-s0-924167"
    run = Run.create(tmp_path / "runs" / long_id, info={"composition": str(comp)})
    (run.path / "config.json").write_text(json.dumps({"model": "cyclegan", "seed": 0}))
    assert run.display_name() == "cyclegan pseudo-paired 0.50 s0 #924167"
    assert run.describe()["name"] == run.display_name() and run.describe()["id"] == long_id
    alpha = Recipe(kind="alpha-paired", alpha=0.5).label()
    assert alpha == "α0.50"
    # a hand-named run without a digest still gets a stable 6-hex tag, and no composition is not an error
    bare = Run.create(tmp_path / "runs" / "my-run", info={})
    assert bare.display_name().startswith("run #") and len(bare.short_hash()) == 6
