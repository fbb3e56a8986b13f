"""The shipped demo checkpoints and the demo workspace a fresh start installs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pairlab.demo import shipped
from pairlab.errors import UserError
from pairlab.train import checkpoint as ckpt
from pairlab.train.run import Run

REQUIRED = ("name", "title", "model", "image_size", "direction", "task", "domains", "landmark_template", "metrics",
            "command", "seed", "preset", "composition", "iteration", "sha1")


def face_tensor(size: int = 64) -> torch.Tensor:
    """A SynthFaces photo from assets/, centre-cropped and resized like a composition image, in [-1, 1]."""
    from PIL import Image

    from pairlab.data.compose import prepare

    img = Image.open(shipped.REPO / "assets" / "demo_faces" / "glasses.jpg").convert("RGB")
    img, _ = prepare(img, None, size)
    return torch.from_numpy(np.asarray(img, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


def test_shipped_checkpoints_are_small_complete_and_load():
    found = shipped.shipped_checkpoints()
    assert [s.name for s in found] == [s.name for s in shipped.SPECS]
    total = sum(f.stat().st_size for f in shipped.shipped_root().rglob("*") if f.is_file())
    assert total <= 40e6, f"the shipped demo is {total / 1e6:.1f} MB"
    for s in found:
        m = s.manifest
        assert all(k in m for k in REQUIRED), [k for k in REQUIRED if k not in m]
        assert m["sha1"] == shipped._sha1(s.path), f"{s.name}: model.pt changed after its manifest was written"
        assert m["preset"] == "cpu-demo-64" and m["image_size"] == 64 and m["iteration"] >= 1000
        assert len(m["landmark_template"]) == 5 and all(0 < v < 64 for p in m["landmark_template"] for v in p)
        assert {"task_rate", "infosim", "gt_l1"} <= set(m["metrics"])
        model, info = ckpt.load_model(s.path, device="cpu")
        assert info["inference_only"] and model.directions == ("AtoB",)
        x = face_tensor()
        y = model.translate(x, "AtoB")
        assert y.shape == x.shape and torch.isfinite(y).all() and y.abs().max() <= 1.0
        # A trained generator changes a face but keeps most of it (it is not the identity, nor noise).
        assert 0.005 < (y - x).abs().mean().item() < 0.3


def test_inference_only_checkpoint_refuses_resume_and_the_other_direction(tmp_path):
    s = shipped.shipped_checkpoints()[0]
    (tmp_path / "latest.pt").write_bytes(s.path.read_bytes())
    with pytest.raises(ckpt.CheckpointError, match="cannot resume"):
        ckpt.load_for_resume(tmp_path)
    model, _ = ckpt.load_model(s.path, device="cpu")
    assert "BtoA" not in model.directions


def test_fresh_and_declined_workspaces(home):
    assert shipped.is_fresh(home) and shipped.start_here(home) is None
    shipped.decline_demo(home)
    assert not shipped.is_fresh(home) and shipped.start_here(home) is None  # no panel in an empty workspace
    (home / shipped.MARKER).unlink()
    assert shipped.is_fresh(home)
    (home / "runs" / "some-run").mkdir(parents=True)
    assert not shipped.is_fresh(home)


def test_install_refuses_another_default_source(home, monkeypatch, synthfaces_root):
    from pairlab.data.sources import open_source

    monkeypatch.setattr(shipped, "_default_source", lambda progress=None: open_source(synthfaces_root, "celeba"))
    with pytest.raises(UserError, match="not the one the demo checkpoints were trained on"):
        shipped.install_demo()


def test_oracle_participant_answers_by_the_classifier():
    class Fake:
        def predict_proba(self, images):
            return np.array([img.mean() / 255 for img in images])

    dark, light = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    assert shipped.oracle_choice(Fake(), dark, light) == "left"
    assert shipped.oracle_choice(Fake(), light, dark) == "right"
    assert shipped.oracle_choice(Fake(), dark, dark) == "both"
    assert shipped.oracle_choice(Fake(), light, light) == "neither"


@pytest.mark.slow
def test_demo_workspace_installs_and_reproduces_the_manifest_metrics(home):
    """What a fresh start does: default SynthFaces, compositions rebuilt byte-identically, runs installed and
    evaluated (the manifests' metrics reproduced), and an example study with votes."""
    summary = shipped.install_demo()
    assert not summary["notes"], summary["notes"]
    assert summary["study"] and summary["study"]["votes"] > 0
    assert not shipped.is_fresh(home)
    from pairlab.eval.evaluate import read_metrics

    for s in shipped.shipped_checkpoints():
        run = home / "runs" / f"demo-{s.name}"
        assert json.loads((run / "status.json").read_text())["state"] == "done"
        assert Run(run).losses() and Run(run).latest_sample() is not None
        got = read_metrics(run)["directions"]["AtoB"]["metrics"]
        for name, want in s.manifest["metrics"].items():
            a, b = got[name]["mean"], want["mean"]
            if a is None or b is None:
                assert a == b, name
                continue
            # Same weights, same test set, same encoders: equal up to float noise of another CPU.
            assert math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-4), (s.name, name, a, b)
    from pairlab.study import plan as plan_mod
    from pairlab.study.store import VoteStore

    studies = plan_mod.list_studies()
    assert len(studies) == 1
    votes = VoteStore.open().votes(summary["study"]["id"])
    assert len(votes) == summary["study"]["votes"]
    # Installing again changes nothing.
    again = shipped.install_demo()
    assert again["runs"] == summary["runs"]
    # Issue 16, finding 5: the demo workspace opens with a "start here" panel naming what is in it, until hidden
    text = shipped.start_here(home)
    assert text and f"{len(summary['runs'])} trained runs" in text and f"{summary['study']['votes']} votes" in text
    assert all(f"**{tab}**" in text for tab in ("Datasets", "Training", "Compare", "User study", "Demo"))
    shipped.hide_start_here(home)
    assert shipped.start_here(home) is None and not shipped.is_fresh(home)
