"""Evaluation end to end on tiny runs: the outputs cache (reuse, invalidation on a new checkpoint), metrics.json,
bad runs in a comparison (one sentence each, the rest still evaluated), seed aggregation, and the lab's encoders:
the identity encoder must separate held-out identities and the eyeglasses classifier must beat chance by far.

One module-wide workspace: a 600-face SynthFaces at 64x64 (its validation partition, ~60 faces, is what the
attribute classifier trains on), an alpha-paired composition (n 20, 10 test images per domain) and two tiny
CycleGAN runs (seeds 0 and 1, 32x32, ngf 8, two iterations)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pairlab import cli, lab
from pairlab.data.recipes import Recipe
from pairlab.errors import UserError
from pairlab.eval import aggregate_seeds, evaluate_runs, format_table, read_metrics, translate_test_set
from pairlab.eval import encoders
from pairlab.train import train
from conftest import tiny_config as tiny
from pairlab.train.checkpoint import load_checkpoint, save_atomic




@pytest.fixture(scope="module")
def lab_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAIRLAB_HOME", str(root / "workspace"))
        mp.delenv("PAIRLAB_DATA_ROOTS", raising=False)
        (root / "torch_home").mkdir()
        mp.setenv("TORCH_HOME", str(root / "torch_home"))  # no FaceNet / AlexNet files: the lab's encoders
        source = lab.synthfaces_source(count=600, size=64)
        comp = lab.build_composition(source, Recipe(kind="alpha-paired", alpha=0.5, n=20, n_test=10), name="evalcomp")
        runs = []
        for seed in (0, 1):
            run = root / "workspace" / "runs" / f"tiny-s{seed}"
            train(comp, run, tiny(seed=seed))
            runs.append(run)
        enc = encoders.lab_identity_encoder(source)
        clf = encoders.attribute_classifier(source, "Eyeglasses")
        yield {"root": root, "source": source, "comp": comp, "runs": runs, "enc": enc, "clf": clf}


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----- the lab's encoders -------------------------------------------------------------------------------
def test_identity_encoder_separates_held_out_identities(lab_ws):
    meta = lab_ws["enc"].meta
    assert meta["heldout_identities"] >= 5 and meta["pairs"] >= 40
    assert meta["verification_accuracy"] >= 0.8, meta
    # trained to be invariant to the attributes: a toggle moves the embedding far less than a new photo does
    assert meta["mean_sq_dist_toggle"] < 0.5 * meta["mean_sq_dist_same"] < meta["mean_sq_dist_different"]
    emb = lab_ws["enc"].embed(np.zeros((3, 64, 64, 3), np.uint8))
    assert emb.shape == (3, 64) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def test_attribute_classifier_beats_chance(lab_ws):
    clf = lab_ws["clf"]
    assert clf.meta["partition"] == "val" and clf.meta["heldout_images"] >= 10
    assert clf.meta["heldout_accuracy"] >= 0.8, clf.meta
    assert clf.meta["test_partition_accuracy"] >= 0.75, clf.meta
    feats = clf.features(torch.zeros(2, 3, 64, 64))
    assert feats.shape == (2, 128)


def test_encoders_are_cached_per_source(lab_ws):
    fp = lab_ws["source"].fingerprint()
    assert encoders.identity_cache_file(fp).exists() and encoders.attribute_cache_file(fp, "Eyeglasses").exists()
    again = encoders.lab_identity_encoder(lab_ws["source"])
    assert again.meta["cached"] and again.meta["verification_accuracy"] == lab_ws["enc"].meta["verification_accuracy"]
    # with the source gone, the cache is still found by its fingerprint
    assert encoders.lab_identity_encoder(None, fingerprint=fp).meta["cached"]
    with pytest.raises(UserError, match="no identity encoder was cached"):
        encoders.lab_identity_encoder(None, fingerprint="0000000000000000")


# ----- the outputs cache --------------------------------------------------------------------------------
def test_outputs_are_cached_and_reused(lab_ws):
    run = lab_ws["runs"][0]
    first = translate_test_set(run)
    manifest = json.loads((lab_ws["comp"] / "manifest.json").read_text())
    assert len(first) == len(manifest["images"]["testA"]) and first.n_truth == len(first)
    assert first.folder.parent == Path(lab_ws["root"]) / "workspace" / "cache" / "outputs"
    assert first.folder.name == f"{first.checkpoint['sha1'][:16]}-AtoB"
    assert (first.folder / "outputs.json").exists() and all(it.output.exists() for it in first)
    name, inp, out, truth = first.rows()[0]
    assert inp.parent.name == "testA" and truth.parent.name == "testA_truth" and out.suffix == ".png"
    mtimes = [it.output.stat().st_mtime_ns for it in first]
    second = translate_test_set(run)
    assert second.reused and second.folder == first.folder
    assert [it.output.stat().st_mtime_ns for it in second] == mtimes
    back = translate_test_set(run, direction="BtoA")
    assert back.folder.name.endswith("-BtoA") and back.n_truth == len(back)
    assert first.load("output").shape == (len(first), 32, 32, 3)
    assert first.load("input").shape == (len(first), 32, 32, 3)  # inputs resized to the output size


def test_a_new_checkpoint_invalidates_the_cache(lab_ws, tmp_path):
    run = copy_run(lab_ws["runs"][0], Path(lab_ws["root"]) / "workspace" / "runs" / "tiny-new-ckpt")
    old = translate_test_set(run)
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    for tensor in state["model_state"]["nets"]["G_A"].values():
        if tensor.dtype.is_floating_point:
            tensor.add_(0.05)
    save_atomic(state, run / "checkpoints" / "latest.pt")
    new = translate_test_set(run)
    assert not new.reused and new.folder != old.folder
    assert not np.array_equal(new.load("output"), old.load("output"))
    assert translate_test_set(run, checkpoint="iter_000002").folder == old.folder  # the old file is still cached


def test_bad_runs_give_one_sentence(lab_ws):
    runs_dir = Path(lab_ws["root"]) / "workspace" / "runs"
    empty = copy_run(lab_ws["runs"][0], runs_dir / "no-ckpt")
    shutil.rmtree(empty / "checkpoints")
    with pytest.raises(UserError, match="has no checkpoints yet"):
        translate_test_set(empty)
    corrupt = copy_run(lab_ws["runs"][0], runs_dir / "corrupt")
    (corrupt / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="unreadable"):
        translate_test_set(corrupt)
    moved = copy_run(lab_ws["runs"][0], runs_dir / "moved")
    info = json.loads((moved / "run.json").read_text())
    info["composition"] = str(Path(lab_ws["root"]) / "elsewhere" / "vanished-comp")
    (moved / "run.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="no longer exists"):
        translate_test_set(moved)
    with pytest.raises(UserError, match="has no checkpoint iter_000099.pt"):
        translate_test_set(lab_ws["runs"][0], checkpoint=99)
    with pytest.raises(UserError, match="There is no run folder"):
        translate_test_set("no-such-run")


# ----- evaluate_runs ------------------------------------------------------------------------------------
def test_evaluate_runs_writes_metrics_and_keeps_going(lab_ws):
    runs_dir = Path(lab_ws["root"]) / "workspace" / "runs"
    empty = copy_run(lab_ws["runs"][1], runs_dir / "eval-no-ckpt")
    shutil.rmtree(empty / "checkpoints")
    corrupt = copy_run(lab_ws["runs"][1], runs_dir / "eval-corrupt")
    (corrupt / "checkpoints" / "latest.pt").write_bytes(b"\x00" * 64)
    results = evaluate_runs(lab_ws["runs"] + [empty, corrupt, runs_dir / "absent"])
    good, errors = results[:2], results[2:]
    for r in good:
        assert r["ok"], r["error"]
        for name in ("gt_mse", "gt_l1", "pixel_acc", "infosim", "task_rate", "confidence_drop"):
            s = r["metrics"][name]
            assert s["n"] == r["n_test"] and s["ci_low"] <= s["mean"] <= s["ci_high"], (name, s)
        assert "verification accuracy" in r["metrics"]["infosim"]["note"]
        assert "held-out accuracy" in r["metrics"]["task_rate"]["note"]
        assert "alexnet-owt-7be5be79.pth" in r["unavailable"]["lpips"]
        assert "palette.json" in r["unavailable"]["label_iou"]
        assert r["info"]["identity_encoder"]["verification_accuracy"] >= 0.8
    for r, phrase in zip(errors, ("no checkpoints yet", "unreadable", "There is no run folder")):
        assert not r["ok"] and phrase in r["error"] and "\n" not in r["error"], r
    data = read_metrics(lab_ws["runs"][0])
    entry = data["directions"]["AtoB"]
    assert entry["checkpoint"]["sha1"] == good[0]["checkpoint"]["sha1"]
    assert set(entry["metrics"]) >= {"gt_mse", "infosim"} and "lpips" in entry["unavailable"]
    per_image = json.loads((lab_ws["runs"][0] / "scores_per_image.json").read_text())["AtoB"]
    assert len(per_image["values"]["gt_mse"]) == len(per_image["names"]) == good[0]["n_test"]
    assert np.mean(per_image["values"]["gt_mse"]) == pytest.approx(entry["metrics"]["gt_mse"]["mean"])
    table = format_table(results)
    assert "MSE to ground truth" in table and "no checkpoints yet" in table and "unavailable:" in table
    # seeds 0 and 1 differ only by seed: one group, two seeds
    groups = aggregate_seeds(results)
    assert len(groups) == 1 and sorted(groups[0]["seeds"]) == [0, 1]
    g = groups[0]["metrics"]["gt_mse"]
    assert g["mean"] == pytest.approx(np.mean([r["metrics"]["gt_mse"]["mean"] for r in good]))
    assert g["seeds"] == 2 and g["ci_low"] <= g["mean"] <= g["ci_high"]


def test_merging_metrics_and_both_directions(lab_ws):
    run = lab_ws["runs"][0]
    r = evaluate_runs([run], metrics="gt_l1", direction="both")
    assert [x["direction"] for x in r] == ["AtoB", "BtoA"] and set(r[1]["metrics"]) == {"gt_l1"}
    data = read_metrics(run)
    assert set(data["directions"]) == {"AtoB", "BtoA"}
    assert "infosim" in data["directions"]["AtoB"]["metrics"]  # earlier metrics of the same checkpoint are kept


def test_different_image_sizes_and_missing_truth(lab_ws):
    runs_dir = Path(lab_ws["root"]) / "workspace" / "runs"
    big = runs_dir / "tiny-48"
    train(lab_ws["comp"], big, tiny(image_size=48))
    results = evaluate_runs(lab_ws["runs"] + [big], metrics="gt_mse")
    assert results[0]["ok"] and results[1]["ok"]
    assert not results[2]["ok"] and "48x48" in results[2]["error"] and "32x32" in results[2]["error"]
    # A test set without ground truth asked for a ground-truth metric: unavailable, with the reason.
    comp2 = Path(lab_ws["root"]) / "workspace" / "compositions" / "evalcomp-notruth"
    shutil.copytree(lab_ws["comp"], comp2)
    m = json.loads((comp2 / "manifest.json").read_text())
    for split in ("testA", "testB"):
        for e in m["images"][split]:
            e["truth"] = None
            e.pop("pair", None)
    (comp2 / "manifest.json").write_text(json.dumps(m))
    run2 = copy_run(lab_ws["runs"][0], runs_dir / "tiny-notruth")
    info = json.loads((run2 / "run.json").read_text())
    info["composition"] = str(comp2)
    (run2 / "run.json").write_text(json.dumps(info))
    (res,) = evaluate_runs([run2], metrics="gt_mse,pixel_acc")
    assert res["ok"] and not res["metrics"]
    assert "no ground truth" in res["unavailable"]["gt_mse"] and "no ground truth" in res["unavailable"]["pixel_acc"]


def test_cli_evaluate(lab_ws, capsys):
    code = cli.main(["evaluate", str(lab_ws["runs"][0]), lab_ws["runs"][1].name, "--metrics", "gt_mse,infosim"])
    out = capsys.readouterr().out
    assert code == 0 and "MSE to ground truth" in out and "InfoSIM" in out and lab_ws["runs"][1].name in out
    assert cli.main(["evaluate", "no-such-run"]) == 2
    assert "There is no run folder" in capsys.readouterr().out
    assert cli.main(["evaluate", str(lab_ws["runs"][0]), "--metrics", "bogus"]) == 2
    assert "Unknown metric bogus" in capsys.readouterr().err


def test_evaluate_runs_with_the_input_unchanged_baseline(lab_ws):
    from pairlab.eval.evaluate import BASELINE_NAME, identity_baselines, split_baselines

    names = "gt_l1,gt_l1_region,gt_l1_outside,gt_region_removed,infosim,task_rate,confidence_drop"
    results = evaluate_runs(lab_ws["runs"], metrics=names, write=False, baseline=True)
    runs, (base,) = split_baselines(results)
    assert [r["name"] for r in runs] == [p.name for p in lab_ws["runs"]]
    assert base["name"] == BASELINE_NAME and sorted(base["runs"]) == sorted(r["name"] for r in runs)
    assert base["n_test"] == runs[0]["n_test"] and base["image_size"] == 32
    m = base["metrics"]
    assert m["gt_region_removed"]["mean"] == 0.0 and m["gt_l1_region"]["mean"] > m["gt_l1_outside"]["mean"] > 0
    assert 0.0 <= m["task_rate"]["mean"] <= 0.5  # the classifier on the unchanged inputs: mostly still eyeglasses
    assert set(base["not_applicable"]) == {"infosim", "confidence_drop"}
    for r in runs:  # the runs have every one of them, each with its interval
        for name in names.split(","):
            s = r["metrics"][name]
            assert s["ci_low"] <= s["mean"] <= s["ci_high"], (name, s)
    assert identity_baselines(runs, metrics="gt_l1")[0]["metrics"]["gt_l1"] == m["gt_l1"]
    table = format_table(results)
    lines = table.splitlines()
    row = next(line for line in lines if line.startswith(BASELINE_NAME))
    assert row.count("does not apply") == 2
    assert sum("compares each output with its own input" in line or "compare each output with its own input" in line
               for line in lines) == 1
    assert "the attribute region of a test image is where" in table and "16/255" in table
    # over seeds: the baseline row follows the group unchanged
    groups = aggregate_seeds(results)
    assert len(groups) == 2 and groups[-1] is base
    # metrics.json of the runs is untouched by the baseline (write=False here; nothing is written for it)
    assert all(r.get("baseline") is None for r in runs)


def test_saved_metrics_are_reused_only_when_nothing_changed(lab_ws, monkeypatch):
    """Issue 16, finding 3: reopening a comparison reuses the saved scores (same checkpoint, outputs and evaluation
    key) instead of computing them again; a new checkpoint, new metric code or another metric is computed."""
    from pairlab.eval import evaluate as ev

    run = copy_run(lab_ws["runs"][0], Path(lab_ws["root"]) / "workspace" / "runs" / "tiny-reuse")
    for name in ("scores.json", "metrics.json", "scores_per_image.json"):  # what earlier tests evaluated
        (run / name).unlink(missing_ok=True)
    (first,) = evaluate_runs([run], metrics="gt_l1,gt_mse")
    assert first["reused_metrics"] == [] and set(first["timings"]) == {"gt_l1", "gt_mse"}
    (again,) = evaluate_runs([run], metrics="gt_l1,gt_mse")
    assert again["reused_metrics"] == ["gt_l1", "gt_mse"] and again["timings"] == {}
    assert again["metrics"] == first["metrics"] and list(again["metrics"]) == ["gt_l1", "gt_mse"]
    (more,) = evaluate_runs([run], metrics="pixel_acc,gt_l1")  # only the new one is computed; asked order kept
    assert more["reused_metrics"] == ["gt_l1"] and set(more["timings"]) == {"pixel_acc"}
    assert list(more["metrics"]) == ["pixel_acc", "gt_l1"]
    monkeypatch.setattr(ev, "evaluation_key", lambda identity="auto": "other-code")
    (recomputed,) = evaluate_runs([run], metrics="gt_l1")
    assert recomputed["reused_metrics"] == [] and recomputed["metrics"]["gt_l1"] == first["metrics"]["gt_l1"]
    assert set(read_metrics(run)["directions"]["AtoB"]["metrics"]) == {"gt_l1"}  # stale values are dropped
    monkeypatch.undo()
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    for tensor in state["model_state"]["nets"]["G_A"].values():
        if tensor.dtype.is_floating_point:
            tensor.add_(0.05)
    save_atomic(state, run / "checkpoints" / "latest.pt")
    (new,) = evaluate_runs([run], metrics="gt_l1,gt_mse")
    assert new["reused_metrics"] == [] and new["metrics"]["gt_l1"] != first["metrics"]["gt_l1"]
    # the input-unchanged baseline is scored once per test set and evaluation key
    (b1,) = ev.identity_baselines([first], metrics="gt_l1,infosim")
    (b2,) = ev.identity_baselines([first], metrics="gt_l1,infosim")
    assert b2["timings"] == {} and b2["metrics"] == b1["metrics"] and b2["not_applicable"] == b1["not_applicable"]
