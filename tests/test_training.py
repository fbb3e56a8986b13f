"""The training loop: run folders, each model kind learning a little, exact resume after SIGKILL, corrupt
checkpoints, configs and presets. Tiny networks (ngf 8, 2 blocks) on 32x32 images keep this fast."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pairlab.errors import UserError
from pairlab.train import PRESETS, TrainConfig, load_preset, read_status, save_preset, train, train_command
from pairlab.train.checkpoint import load_checkpoint, load_model
from pairlab.train.data import TrainData

ROOT = Path(__file__).resolve().parents[1]


# ----- a tiny composition: a red disk (A) and the same disk in blue (B) on a shared background ---------------
def _disk(rng, size, color):
    yy, xx = np.mgrid[:size, :size]
    img = np.stack([60 + 40 * xx / size, np.full((size, size), 90.0), 120 + 60 * yy / size], -1)
    cx, cy = rng.uniform(size * 0.3, size * 0.7, 2)
    r = rng.uniform(size * 0.15, size * 0.3)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = color
    return img.astype(np.uint8)


def make_composition(root: Path, n_train=6, n_test=2, size=32, n_paired=3, seed=0) -> Path:
    """trainA/trainB/testA/testB PNGs and a manifest; the first n_paired trainA entries know their pair."""
    rng = np.random.default_rng(seed)
    images = {s: [] for s in ("trainA", "trainB", "testA", "testB")}
    for split, n in (("train", n_train), ("test", n_test)):
        (root / f"{split}A").mkdir(parents=True)
        (root / f"{split}B").mkdir(parents=True)
        for i in range(n):
            state = rng.bit_generator.state
            a = _disk(rng, size, (220, 40, 40))
            rng.bit_generator.state = state  # the same disk again: b is the true counterpart of a
            b = _disk(rng, size, (40, 40, 220))
            Image.fromarray(a).save(root / f"{split}A" / f"a{i}.png")
            Image.fromarray(b).save(root / f"{split}B" / f"b{i}.png")
            pair = f"b{i}.png" if (split == "test" or i < n_paired) else None
            images[f"{split}A"].append({"file": f"a{i}.png", "pair": pair})
            images[f"{split}B"].append({"file": f"b{i}.png"})
    (root / "manifest.json").write_text(json.dumps({"images": images}))
    return root


@pytest.fixture
def comp(tmp_path) -> Path:
    return make_composition(tmp_path / "toy")


def tiny(**kw) -> TrainConfig:
    base = dict(image_size=32, ngf=8, ndf=8, n_blocks=2, max_iters=12, n_epochs=1, n_epochs_decay=1,
                save_every=3, sample_every=6, log_every=1, deterministic=True, threads=1, n_samples=2)
    base.update(kw)
    return TrainConfig(**base)


def assert_same(a, b, where="checkpoint"):
    """Every tensor and value of two checkpoint structures is identical."""
    assert type(a) is type(b), where
    if torch.is_tensor(a):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]


# ----- each model kind ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model,loss", [("cyclegan", "cycle_A"), ("hybrid", "L1"), ("pix2pix", "G_L1")])
def test_each_model_trains_and_writes_run_folder(comp, tmp_path, model, loss):
    run = tmp_path / f"run-{model}"
    seen = []
    status = train(comp, run, tiny(model=model, max_iters=24, lr=1e-3, deterministic=False),
                   progress=seen.append)
    assert status["state"] == "done" and status["progress"] == 1.0 and status["iteration"] == 24
    for name in ("config.json", "run.json", "status.json", "losses.jsonl", "log.txt", "checkpoints/latest.pt",
                 "checkpoints/iter_000024.pt", "samples/iter_000024.png"):
        assert (run / name).exists(), name
    assert len(list((run / "checkpoints").glob("iter_*.pt"))) == 3  # keep_last
    assert TrainConfig.from_json(run / "config.json") == tiny(model=model, max_iters=24, lr=1e-3,
                                                               deterministic=False).resolved()
    lines = metrics(run)
    assert [m["iter"] for m in lines] == list(range(1, 25))
    assert all(np.isfinite(v) for m in lines for v in m.values())
    first, last = np.mean([m[loss] for m in lines[:4]]), np.mean([m[loss] for m in lines[-4:]])
    assert last < first, f"{loss} did not decrease: {first:.3f} -> {last:.3f}"
    assert lines[0]["lr"] == pytest.approx(1e-3) and lines[-1]["lr"] < 1e-3  # decay in the second half
    assert seen and seen[-1]["state"] == "done"
    grid = Image.open(run / "samples" / "iter_000024.png")
    rows = 4 if model != "pix2pix" else 2  # 2 test A (+ 2 test B for the two-way models), 3 columns
    assert grid.size == (3 * 32, rows * 32)


def test_hybrid_paired_repeats_and_pix2pix_pairs(comp):
    cfg = tiny(model="hybrid", paired_repeats=3)
    data = TrainData(comp, cfg.resolved(), "hybrid")
    assert data.length == 3 + 3 * 3  # 3 unpaired + 3 paired x 3 copies
    plan = data.plan(0)
    assert np.bincount(plan["a"], minlength=6).tolist() == [3, 3, 3, 1, 1, 1]
    auto = TrainData(comp, tiny(model="hybrid", paired_repeats=0).resolved(), "hybrid")
    assert auto.copies == 1  # 3 paired already match 3 unpaired
    batch = data.batch(0, 0, data.length)
    for i in range(data.length):  # a paired sample carries its true counterpart as B, same flip
        if batch["paired"][i]:
            a, b = batch["A"][i], batch["B"][i]
            assert torch.equal((a[0] > 0.5), (b[2] > 0.5))  # the red disk of A is the blue disk of B
    aligned = TrainData(comp, tiny(model="pix2pix").resolved(), "aligned")
    assert aligned.length == 3 and set(aligned.plan(0)["a"].tolist()) == {0, 1, 2}
    # The data order is a pure function of (seed, epoch).
    again = TrainData(comp, cfg.resolved(), "hybrid")
    assert_same(data.plan(4), again.plan(4))
    assert not np.array_equal(data.plan(4)["a"], data.plan(5)["a"])


def test_paired_repeats_zero_matches_the_unpaired_count(tmp_path):
    comp = make_composition(tmp_path / "few-pairs", n_train=8, n_paired=2)  # 2 paired, 6 unpaired A
    auto = TrainData(comp, tiny(model="hybrid", paired_repeats=0).resolved(), "hybrid")
    assert auto.copies == 3 and auto.length == 6 + 2 * 3  # paper 002 Sec. 4.1.5: 2 x 3 paired = 6 unpaired
    assert np.bincount(auto.plan(0)["a"], minlength=8).tolist() == [3, 3, 1, 1, 1, 1, 1, 1]
    once = TrainData(comp, tiny(model="hybrid").resolved(), "hybrid")  # the default, 1: no balancing
    assert once.copies == 1 and once.length == 8


def test_pix2pix_without_pairs_is_one_sentence(tmp_path):
    comp = make_composition(tmp_path / "nopairs", n_paired=0)
    with pytest.raises(UserError, match="pix2pix needs explicit pairs"):
        train(comp, tmp_path / "run", tiny(model="pix2pix"))
    status = read_status(tmp_path / "run")
    assert status["state"] == "failed" and status["error"].startswith("pix2pix needs explicit pairs")


# ----- exact resume --------------------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import sys, time
    from pairlab.train import TrainConfig, train
    comp, run, cfg_path, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    cfg = TrainConfig.from_json(cfg_path)
    train(comp, run, cfg, progress=lambda s: time.sleep(delay), resume=True)
""")


def _child(tmp_path, comp, run, cfg, delay=0.0):
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(cfg.to_json())
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(script), str(comp), str(run), str(cfg_path), str(delay)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigkill_then_resume_is_bit_identical(comp, tmp_path):
    cfg = tiny(model="cyclegan")
    reference = tmp_path / "reference"
    train(comp, reference, cfg)

    run = tmp_path / "killed"
    proc = _child(tmp_path, comp, run, cfg, delay=0.2)
    deadline = time.time() + 60
    while not (run / "checkpoints" / "latest.pt").exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # somewhere after the first checkpoint, possibly in the middle of writing the next one
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = read_status(run)["iteration"]
    assert killed_at < 12 and read_status(run)["state"] == "running"

    proc = _child(tmp_path, comp, run, cfg)
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 0, out
    assert read_status(run)["state"] == "done"
    assert "resumed from latest.pt" in (run / "log.txt").read_text()
    assert_same(load_checkpoint(run / "checkpoints" / "latest.pt"),
                load_checkpoint(reference / "checkpoints" / "latest.pt"))
    assert [m["iter"] for m in metrics(run)] == list(range(1, 13))  # no duplicated lines after the resume


def test_resume_at_epoch_boundary_and_after_stop(comp, tmp_path):
    # pix2pix draws dropout noise from the torch RNG and keeps batch-norm statistics: both must be restored.
    # At 64x64 the U-Net has one CD512-style level, so dropout is really drawn.
    cfg = tiny(model="pix2pix", keep_last=10, image_size=64)
    reference = tmp_path / "reference"
    train(comp, reference, cfg)
    boundary = load_checkpoint(reference / "checkpoints" / "iter_000006.pt")
    assert (boundary["epoch"], boundary["index"]) == (1, 3)  # 3 pairs per epoch: the end of epoch 1

    # A run stopped exactly at the epoch boundary, resumed in this process.
    run = tmp_path / "stopped"
    status = train(comp, run, cfg, should_stop=lambda: read_status(run).get("iteration", 0) >= 5)
    assert status["state"] == "stopped" and status["iteration"] == 6
    assert train(comp, run, resume=True)["state"] == "done"
    assert_same(load_checkpoint(run / "checkpoints" / "latest.pt"),
                load_checkpoint(reference / "checkpoints" / "latest.pt"))

    # Resuming from a copied epoch-boundary checkpoint gives the same end as well.
    again = tmp_path / "from-boundary"
    (again / "checkpoints").mkdir(parents=True)
    (again / "config.json").write_text((reference / "config.json").read_text())
    (again / "checkpoints" / "latest.pt").write_bytes((reference / "checkpoints" / "iter_000006.pt").read_bytes())
    train(comp, again, cfg, resume=True)
    assert_same(load_checkpoint(again / "checkpoints" / "latest.pt"),
                load_checkpoint(reference / "checkpoints" / "latest.pt"))


def test_corrupt_latest_falls_back_to_periodic_checkpoint(comp, tmp_path):
    cfg = tiny(model="cyclegan")
    reference = tmp_path / "reference"
    train(comp, reference, cfg)
    run = tmp_path / "run"
    train(comp, run, cfg, should_stop=lambda: read_status(run).get("iteration", 0) >= 8)  # stops at 9
    (run / "checkpoints" / "latest.pt").write_bytes(b"this is not a checkpoint")
    (run / "checkpoints" / "iter_000009.pt").write_bytes(b"")  # the newest periodic one is broken too
    status = train(comp, run, resume=True)
    assert status["state"] == "done"
    note = [line for line in (run / "log.txt").read_text().splitlines() if "unreadable" in line][0]
    assert "latest.pt is unreadable" in note and "resumed from iter_000006.pt instead." in note
    assert note.count(".") >= 1 and "\n" not in note and "Traceback" not in note
    assert_same(load_checkpoint(run / "checkpoints" / "latest.pt"),
                load_checkpoint(reference / "checkpoints" / "latest.pt"))


def test_all_checkpoints_unreadable_is_one_sentence(comp, tmp_path):
    run = tmp_path / "run"
    train(comp, run, tiny(max_iters=3))
    for p in (run / "checkpoints").glob("*.pt"):
        p.write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"^No readable checkpoint in .*delete that folder to start over\.$"):
        train(comp, run, resume=True)
    assert read_status(run)["state"] == "failed"


def test_init_from_copies_compatible_networks(comp, tmp_path):
    source = tmp_path / "source"
    train(comp, source, tiny(max_iters=3))
    target = tmp_path / "target"
    train(comp, target, tiny(max_iters=1, lr=1e-12, init_from=str(source)))
    src = load_checkpoint(source / "checkpoints" / "latest.pt")["model_state"]["nets"]["G_A"]
    dst = load_checkpoint(target / "checkpoints" / "latest.pt")["model_state"]["nets"]["G_A"]
    assert all(torch.allclose(src[k].float(), dst[k].float(), atol=1e-6) for k in src)
    assert "initialised G_A, G_B, D_A, D_B from" in (target / "log.txt").read_text()
    with pytest.raises(UserError, match="no networks compatible"):
        train(comp, tmp_path / "p2p", tiny(model="pix2pix", init_from=str(source)))
    # The same checkpoint serves inference.
    model, info = load_model(source, device="cpu")
    assert info["iteration"] == 3 and info["config"].model == "cyclegan"
    x = torch.zeros(1, 3, 32, 32)
    assert model.translate(x, "AtoB").shape == x.shape and model.translate(x, "BtoA").shape == x.shape


# ----- config, presets, command --------------------------------------------------------------------------
def test_config_overrides_and_json_round_trip(tmp_path):
    cfg = TrainConfig().with_overrides(["ngf=32", "lr=1e-3", "flip=false", "lambda_l1=none", "relativistic=rsgan"])
    assert (cfg.ngf, cfg.lr, cfg.flip, cfg.lambda_l1, cfg.relativistic) == (32, 1e-3, False, None, "rsgan")
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert cfg.with_overrides({"n_blocks": 6.0}).n_blocks == 6
    for bad, pattern in [(["ngff=3"], "Unknown training setting 'ngff'"), (["ngf=abc"], "'ngf' must be a whole number"),
                         (["flip=maybe"], "must be true or false"), (["model=unet"], "Unknown model 'unet'"),
                         (["relativistic=yes"], "relativistic must be one of"), (["ngf"], "key=value"),
                         ({"lr": "fast"}, "'lr' must be a number"), (["batch_size=0"], "batch_size must be at least 1")]:
        with pytest.raises(UserError, match=pattern) as err:
            cfg.with_overrides(bad)
        assert str(err.value).count("\n") == 0 and str(err.value).endswith((".", "?"))
    with pytest.raises(UserError, match="power-of-two"):
        TrainConfig(model="pix2pix", image_size=48)
    # Model defaults fill the None fields.
    assert TrainConfig(model="cyclegan").resolved().lambda_identity == 0.5
    hybrid = TrainConfig(model="hybrid").resolved()
    assert (hybrid.lambda_gan, hybrid.lambda_cycle, hybrid.lambda_identity * hybrid.lambda_cycle, hybrid.lambda_l1) \
        == (1.0, 10.0, 10.0, 150.0)
    p2p = TrainConfig(model="pix2pix").resolved()
    assert (p2p.lambda_l1, p2p.pool_size) == (100.0, 0)
    # Switching the model of a resolved config brings back the new kind's defaults, unless given explicitly.
    switched = TrainConfig().resolved().with_overrides({"model": "pix2pix"}).resolved()
    assert (switched.lambda_l1, switched.pool_size) == (100.0, 0)
    assert TrainConfig().resolved().with_overrides(["model=hybrid", "lambda_l1=50"]).resolved().lambda_l1 == 50.0


def test_presets(tmp_path):
    paper = PRESETS["paper-128"].resolved()
    assert (paper.image_size, paper.ngf, paper.ndf, paper.n_blocks, paper.batch_size, paper.n_epochs,
            paper.n_epochs_decay, paper.lr, paper.beta1, paper.pool_size, paper.lambda_cycle,
            paper.lambda_identity) == (128, 64, 64, 9, 1, 100, 100, 2e-4, 0.5, 50, 10.0, 0.5)
    demo = PRESETS["cpu-demo-64"]
    assert (demo.image_size, demo.ngf, demo.n_blocks) == (64, 32, 6) and 300 <= demo.max_iters <= 1500
    mine = demo.with_overrides(["seed=7"])
    save_preset("my-demo", mine, tmp_path)
    assert load_preset("my-demo", tmp_path) == mine
    assert load_preset("paper-128", tmp_path) == PRESETS["paper-128"]
    with pytest.raises(UserError, match="Unknown preset 'nope'"):
        load_preset("nope", tmp_path)


def test_paper_002_preset_follows_the_paper():
    p = PRESETS["paper-002"]
    assert p == p.resolved()  # every model-dependent setting is written out, nothing left to the model's defaults
    # Sec. 3.3 / 3.3.1 / 3.5 / 4.1.5: hybrid, relativistic D, weights (1, 10, 10, 150), balanced pairs.
    assert (p.model, p.relativistic, p.paired_repeats) == ("hybrid", "rsgan", 0)
    assert (p.lambda_gan, p.lambda_cycle, p.lambda_identity * p.lambda_cycle, p.lambda_l1) == (1.0, 10.0, 10.0, 150.0)
    assert (p.batch_size, p.lr, p.pool_size, p.flip, p.n_epochs, p.ngf, p.ndf, p.n_blocks) == \
        (1, 2e-4, 50, True, p.n_epochs_decay, 64, 64, 9)
    assert p.load_size / p.image_size == pytest.approx(286 / 256, abs=0.01)
    assert TrainConfig.from_json(p.to_json()) == p


def test_paper_002_preset_trains_with_the_tiny_config(tmp_path):
    from conftest import tiny_config

    comp = make_composition(tmp_path / "few-pairs", n_train=8, n_paired=2)
    small = tiny_config()  # the shared tiny sizes (32x32, ngf 8, one block, two iterations)
    sizes = ("image_size", "ngf", "ndf", "n_blocks", "max_iters", "n_epochs", "n_epochs_decay", "save_every",
             "sample_every", "log_every", "threads", "n_samples")
    cfg = PRESETS["paper-002"].with_overrides({k: getattr(small, k) for k in sizes}).with_overrides(["load_size=36"])
    cfg.validate()
    assert (cfg.model, cfg.relativistic, cfg.paired_repeats, cfg.lambda_l1) == ("hybrid", "rsgan", 0, 150.0)
    run = tmp_path / "run"
    status = train(comp, run, cfg)
    assert status["state"] == "done" and status["iteration"] == 2
    stored = TrainConfig.from_json(run / "config.json")
    assert stored == cfg.resolved() and stored.relativistic == "rsgan"
    lines = metrics(run)
    assert [m["iter"] for m in lines] == [1, 2]
    assert all(np.isfinite(v) for m in lines for v in m.values())
    assert {"G_A", "G_B", "D_A", "D_B", "L1", "cycle_A", "idt_A"} <= set(lines[0])


def test_old_balance_copies_key_reads_as_paired_repeats(comp, tmp_path):
    # An override (--set / the Training tab), a dict, a constructor keyword: the old name with its old meaning.
    assert TrainConfig().with_overrides(["balance_copies=0"]).paired_repeats == 0
    assert TrainConfig.from_dict({"model": "hybrid", "balance_copies": 4}).paired_repeats == 4
    assert tiny(model="hybrid", balance_copies=2).paired_repeats == 2
    assert TrainConfig().with_overrides({"balance_copies": 3, "paired_repeats": "3"}).paired_repeats == 3
    for bad, pattern in [({"balance_copies": 2, "paired_repeats": 3}, "old name of paired_repeats"),
                         (["balance_copies=-1"], "paired_repeats must not be negative"),
                         (["balance_copies=x"], "'paired_repeats' must be a whole number")]:
        with pytest.raises(UserError, match=pattern):
            TrainConfig().with_overrides(bad)
    new = tiny(model="hybrid", paired_repeats=0)
    assert "balance_copies" not in new.to_dict() and new.to_dict()["paired_repeats"] == 0
    # A config.json and a saved preset written before the rename.
    old = new.resolved().to_dict()
    old["balance_copies"] = old.pop("paired_repeats")
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert TrainConfig.from_json(tmp_path / "old.json") == new.resolved()
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "mine.json").write_text(json.dumps(old))
    assert load_preset("mine", tmp_path / "presets") == new.resolved()
    # A run folder whose config.json has the old key trains, and resumes exactly, under the new name.
    reference = tmp_path / "reference"
    train(comp, reference, new)
    run = tmp_path / "old-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(old))
    status = train(comp, run, should_stop=lambda: read_status(run).get("iteration", 0) >= 5, resume=True)
    assert status["state"] == "stopped" and status["iteration"] == 6
    assert train(comp, run, resume=True)["state"] == "done"
    assert_same(load_checkpoint(run / "checkpoints" / "latest.pt"),
                load_checkpoint(reference / "checkpoints" / "latest.pt"))


def test_checkpoint_written_before_the_rename_resumes(comp, tmp_path):
    from pairlab.train.checkpoint import save_atomic

    new = tiny(model="hybrid", paired_repeats=0)
    reference = tmp_path / "reference"
    train(comp, reference, new)
    run = tmp_path / "old-run"
    status = train(comp, run, new, should_stop=lambda: read_status(run).get("iteration", 0) >= 5)
    assert status["iteration"] == 6
    old = new.resolved().to_dict()
    old["balance_copies"] = old.pop("paired_repeats")
    (run / "config.json").write_text(json.dumps(old))
    for path in (run / "checkpoints").glob("*.pt"):  # as checkpoints saved before the rename
        state = load_checkpoint(path)
        state["config"] = old
        save_atomic(state, path)
    assert load_model(run / "checkpoints" / "latest.pt", device="cpu")[1]["config"] == new.resolved()
    assert train(comp, run, resume=True)["state"] == "done"
    assert_same(load_checkpoint(run / "checkpoints" / "latest.pt"),
                load_checkpoint(reference / "checkpoints" / "latest.pt"))


def test_train_command_names_and_resumes_the_run(comp, tmp_path, capsys):
    overrides = ["image_size=32", "load_size=36", "ngf=8", "ndf=8", "n_blocks=2", "max_iters=4", "log_every=2",
                 "save_every=2", "sample_every=4"]
    run = train_command(comp, "cyclegan", "cpu-demo-64", overrides, runs_dir=tmp_path / "runs", seed=3)
    assert run.parent == tmp_path / "runs" and run.name.startswith("toy-cyclegan-cpu-demo-64-s3-")
    assert read_status(run)["state"] == "done"
    out = capsys.readouterr().out
    assert "iter 2/4 (50%)" in out and "iter 4/4 (100%)" in out
    assert train_command(comp, "cyclegan", "cpu-demo-64", overrides, runs_dir=tmp_path / "runs", seed=3) == run
    assert "resuming run" in capsys.readouterr().out
    with pytest.raises(UserError, match="does not exist"):
        train_command(tmp_path / "missing", "cyclegan", "cpu-demo-64", overrides, runs_dir=tmp_path / "runs")


def test_early_and_final_sample_and_status_between_log_steps(comp, tmp_path, monkeypatch):
    """Issue 16: sample_every > max_iters still gives a sample early and one at the end; the status moves between
    log steps (at most once a second, so it stays cheap)."""
    import pairlab.train.loop as loop_mod

    run = tmp_path / "run-cadence"
    seen_iters = []
    real_update = loop_mod.Run.update_status

    def spy(self, **fields):
        if "iteration" in fields:
            seen_iters.append(fields["iteration"])
        return real_update(self, **fields)

    monkeypatch.setattr(loop_mod.Run, "update_status", spy)
    clock = iter(range(10**6))
    real_time = loop_mod.time.time
    monkeypatch.setattr(loop_mod.time, "time", lambda: real_time() + 2.0 * next(clock))  # 2 s per call: always due
    status = train(comp, run, tiny(max_iters=8, sample_every=1000, log_every=4, save_every=1000))
    assert status["state"] == "done"
    names = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert names == ["iter_000004.png", "iter_000008.png"], names
    assert {1, 2, 3, 5, 6, 7} <= set(seen_iters)  # status between log steps, not only at 4 and 8
