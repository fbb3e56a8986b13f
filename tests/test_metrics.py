"""Metrics against hand-computed values on tiny images, the bootstrap's coverage, seed aggregation, and the
one-sentence reasons metrics give when what they need is missing. No training here (see test_eval.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pairlab.eval import metrics as M
from pairlab.eval.metrics import REGISTRY, EvalContext
from pairlab.eval.outputs import OutputItem, OutputSet
from pairlab.eval.stats import bootstrap_ci, seed_summary, summarize


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """A TORCH_HOME with no weight files in it."""
    th = tmp_path / "torch_home"
    th.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(th))
    return th


def make_set(tmp_path: Path, inputs, outputs, truths=None, direction="AtoB", manifest=None, palette=None) -> OutputSet:
    """An OutputSet over PNGs written from uint8 arrays (truths: a list with None where unknown)."""
    comp = tmp_path / "comp"
    cache = tmp_path / "cache"
    for d in (comp / "testA", comp / "testA_truth", cache):
        d.mkdir(parents=True, exist_ok=True)
    (comp / "manifest.json").write_text(json.dumps(manifest or {"task": "eyeglasses", "source": {}}))
    if palette is not None:
        (comp / "palette.json").write_text(json.dumps(palette))
    items = []
    for i, (a, b) in enumerate(zip(inputs, outputs)):
        name = f"img{i}.png"
        Image.fromarray(np.asarray(a, np.uint8)).save(comp / "testA" / name)
        Image.fromarray(np.asarray(b, np.uint8)).save(cache / name)
        truth = None
        if truths is not None and truths[i] is not None:
            truth = comp / "testA_truth" / name
            Image.fromarray(np.asarray(truths[i], np.uint8)).save(truth)
        items.append(OutputItem(name, comp / "testA" / name, cache / name, truth))
    size = np.asarray(outputs[0]).shape[0]
    return OutputSet(folder=cache, run_dir=tmp_path, composition=comp, direction=direction, image_size=size,
                     checkpoint={"file": "x.pt", "sha1": "0" * 40, "iteration": 0}, items=items)


def compute(name: str, outputs: OutputSet) -> tuple[float, np.ndarray]:
    ctx = EvalContext(outputs)
    metric = REGISTRY[name]
    ok, why = metric.available(ctx)
    assert ok, why
    values = np.asarray(metric.compute(ctx), dtype=np.float64)
    return summarize(values, reduce=metric.reduce)["mean"], values


def rand_images(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(30, 200, (n, size, size, 3)).astype(np.uint8)


# ----- ground truth --------------------------------------------------------------------------------------
def test_identical_images_give_zero_error_and_full_accuracy(tmp_path):
    imgs = rand_images(3)
    s = make_set(tmp_path, imgs, imgs, list(imgs))
    assert compute("gt_mse", s)[0] == 0.0
    assert compute("gt_l1", s)[0] == 0.0
    assert compute("pixel_acc", s)[0] == 1.0


def test_known_perturbation_gives_its_known_error(tmp_path):
    out = rand_images(2)
    truth = out.astype(np.int16)
    truth[0] += 10                 # every channel off by 10/255
    truth[1, :4] += 30             # half the rows off by 30, the rest exact
    truth = truth.astype(np.uint8)
    s = make_set(tmp_path, out, out, list(truth))
    mean_mse, per_mse = compute("gt_mse", s)
    assert per_mse[0] == pytest.approx((10 / 255) ** 2)
    assert per_mse[1] == pytest.approx(0.5 * (30 / 255) ** 2)
    assert mean_mse == pytest.approx(((10 / 255) ** 2 + 0.5 * (30 / 255) ** 2) / 2)
    _, per_l1 = compute("gt_l1", s)
    assert per_l1 == pytest.approx([10 / 255, 0.5 * 30 / 255])
    # max channel difference < 20 is correct: all of image 0, half of image 1
    acc, per_acc = compute("pixel_acc", s)
    assert per_acc == pytest.approx([1.0, 0.5]) and acc == pytest.approx(0.75)


def test_pixel_accuracy_threshold_is_strict_and_uses_the_max_channel():
    a = np.zeros((1, 1, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = (19, 0, 0)   # 19 < 20: correct
    b[0, 0, 1] = (0, 20, 0)   # 20 is not below 20: wrong
    b[0, 0, 2] = (5, 5, 25)   # one channel off by 25: wrong
    assert M.pixel_accuracy(a, b)[0] == pytest.approx(0.5)


def test_only_images_with_truth_count(tmp_path):
    imgs = rand_images(3)
    s = make_set(tmp_path, imgs, imgs, [imgs[0], None, imgs[2]])
    ctx = EvalContext(s)
    values = REGISTRY["gt_mse"].compute(ctx)
    assert np.isnan(values[1]) and summarize(values)["n"] == 2


# ----- labels -----------------------------------------------------------------------------------------
PALETTE = {"domain": "B", "classes": [{"name": "red", "color": [255, 0, 0]}, {"name": "green", "color": [0, 255, 0]},
                                      {"name": "blue", "color": [0, 0, 255]}]}


def test_three_colour_palette_scores(tmp_path):
    truth = np.zeros((8, 8, 3), np.uint8)
    truth[:, :4] = (255, 0, 0)     # left half red: 32 px
    truth[:4, 4:] = (0, 255, 0)    # top right green: 16 px
    truth[4:, 4:] = (0, 0, 255)    # bottom right blue: 16 px
    pred = truth.copy()
    pred[:4, 4:] = (240, 20, 10)   # green predicted as (noisy) red
    pred[:, :4] = (250, 6, 3)      # noisy red stays red
    pred[4:, 4:] = (10, 12, 230)   # noisy blue stays blue
    s = make_set(tmp_path, [truth], [pred], [truth], palette=PALETTE)
    # confusion: red->red 32, green->red 16, blue->blue 16
    assert compute("label_pixel_acc", s)[0] == pytest.approx(48 / 64)
    assert compute("label_class_acc", s)[0] == pytest.approx((1 + 0 + 1) / 3)
    assert compute("label_iou", s)[0] == pytest.approx((32 / 48 + 0 + 1) / 3)


def test_label_scores_sum_confusion_over_images():
    # two 1-pixel-class images: IoU is computed on the summed matrix, not averaged per image
    t = np.array([[[0, 0], [1, 1]]])
    p = np.array([[[0, 1], [1, 1]]])
    m = M.confusion_matrices(np.concatenate([p, p]), np.concatenate([t, t]), 2)
    agg = m.mean(0, keepdims=True)
    assert M.label_pixel_accuracy(agg)[0] == pytest.approx(0.75)
    assert M.label_iou(agg)[0] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_palette_needs_the_target_domain(tmp_path):
    img = rand_images(1)
    s = make_set(tmp_path, img, img, list(img), direction="BtoA", palette=PALETTE)
    ok, why = REGISTRY["label_iou"].available(EvalContext(s))
    assert not ok and "domain B" in why and "BtoA" in why


# ----- identity and LPIPS plumbing --------------------------------------------------------------------
def test_infosim_is_the_mse_of_embeddings():
    a = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    b = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert M.infosim_values(a, b) == pytest.approx([0.0, 2.0 / 4])


def test_lpips_loads_a_backbone_file_and_gives_zero_on_identical_images(tmp_path, no_weights):
    import torchvision

    # A random AlexNet saved under the real file name: this tests the loading path, never a metric value.
    folder = no_weights / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    alex = torchvision.models.alexnet()
    torch.save(alex.state_dict(), folder / M.ALEXNET_FILE)
    model = M.lpips_model("cpu")
    assert torch.equal(model.net.slice1[0].weight, alex.features[0].weight)
    assert torch.equal(model.net.slice5._modules["10"].weight, alex.features[10].weight)
    imgs = rand_images(2, size=32)
    other = rand_images(2, size=32, seed=5)
    s = make_set(tmp_path, imgs, imgs, list(imgs))
    assert compute("lpips", s)[0] == pytest.approx(0.0, abs=1e-7)
    assert (M.lpips_values(model, imgs, other) > 0).all()


def test_facenet_is_used_when_its_file_is_present(no_weights):
    from facenet_pytorch import InceptionResnetV1

    from pairlab.eval import encoders

    (no_weights / "checkpoints").mkdir()
    torch.manual_seed(0)
    torch.save(InceptionResnetV1(pretrained=None).state_dict(), no_weights / "checkpoints" / encoders.FACENET_FILE)
    enc = encoders.identity_encoder(None, None, device="cpu")  # random weights: the plumbing only
    assert isinstance(enc, encoders.FaceNetEncoder)
    emb = enc.embed(rand_images(2, size=64))
    assert emb.shape == (2, 512) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


# ----- unavailable metrics: one sentence each -------------------------------------------------------------
def one_sentence(text: str) -> bool:
    return text.endswith(".") and "\n" not in text and text.count(". ") == 0


def test_unavailable_metrics_say_why_in_one_sentence(tmp_path, no_weights, home):
    imgs = rand_images(2)
    s = make_set(tmp_path, imgs, imgs, None, manifest={"task": "folders", "source": {}})
    ctx = EvalContext(s)
    reasons = {name: m.available(ctx) for name, m in REGISTRY.items()}
    assert not any(ok for ok, _ in reasons.values())
    for name, (ok, why) in reasons.items():
        assert one_sentence(why), (name, why)
    assert "no ground truth" in reasons["gt_mse"][1] and "no ground truth" in reasons["pixel_acc"][1]
    assert M.ALEXNET_FILE in reasons["lpips_input"][1] and str(no_weights) in reasons["lpips_input"][1]
    assert "20180402-114759-vggface2.pt" in reasons["infosim"][1]
    assert "identity_CelebA.txt" in reasons["infosim"][1]
    assert "attribute task" in reasons["task_rate"][1]
    with_truth = make_set(tmp_path / "t", imgs, imgs, list(imgs))
    ok, why = REGISTRY["label_iou"].available(EvalContext(with_truth))
    assert not ok and "palette.json" in why and one_sentence(why)


def test_vanished_source_is_named(tmp_path, no_weights, home):
    imgs = rand_images(2)
    s = make_set(tmp_path, imgs, imgs, list(imgs),
                 manifest={"task": "eyeglasses", "source": {"kind": "synthfaces", "root": str(tmp_path / "gone"),
                                                            "fingerprint": "abc"}})
    ok, why = REGISTRY["infosim"].available(EvalContext(s))
    assert not ok and "no longer exists" in why and one_sentence(why)
    ok, why = REGISTRY["confidence_drop"].available(EvalContext(s))
    assert not ok and "no longer exists" in why and one_sentence(why)


def test_unknown_metric_name():
    from pairlab.errors import UserError

    with pytest.raises(UserError, match="Unknown metric nope"):
        M.get_metrics("gt_mse,nope")


# ----- statistics -------------------------------------------------------------------------------------
def test_bootstrap_interval_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(123)
    reps, n, true_mean = 200, 60, 1.0
    covered = 0
    for r in range(reps):
        sample = rng.exponential(true_mean, n)  # skewed, like per-image errors
        _, lo, hi = bootstrap_ci(sample, n_boot=1000, seed=r)
        covered += lo <= true_mean <= hi
    assert 0.88 <= covered / reps <= 0.99, covered / reps


def test_bootstrap_edge_cases():
    est, lo, hi = bootstrap_ci([0.3])
    assert est == lo == hi == 0.3
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    est, lo, hi = bootstrap_ci([1.0, np.nan, 3.0])
    assert est == 2.0 and 1.0 <= lo <= hi <= 3.0
    assert bootstrap_ci([1.0, 2.0, 3.0], seed=4) == bootstrap_ci([1.0, 2.0, 3.0], seed=4)
    # a ratio statistic over per-image sufficient statistics
    hits = np.array([[1, 2], [3, 4], [0, 2]], dtype=float)
    est, lo, hi = bootstrap_ci(hits, reduce=lambda m: m[..., 0] / m[..., 1])
    assert est == pytest.approx(4 / 8) and lo <= est <= hi


def test_seed_summary_is_mean_of_means_with_a_t_interval():
    per_seed = [{"mean": 1.0, "n": 10}, {"mean": 2.0, "n": 10}, {"mean": 3.0, "n": 10}]
    s = seed_summary(per_seed)
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(k), sd = 1
    assert s["mean"] == 2.0 and s["seeds"] == 3 and s["n"] == 30
    assert s["ci_low"] == pytest.approx(2.0 - half) and s["ci_high"] == pytest.approx(2.0 + half)
    one = seed_summary([{"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 5}])
    assert (one["ci_low"], one["ci_high"], one["seeds"]) == (0.4, 0.6, 1)


# ----- the attribute region: task vs preservation ------------------------------------------------------
def square_case(size=16):
    """Truth: flat grey 100. Input: the same with a 4x4 square (rows/cols 6..9) at 200, the 'attribute'."""
    truth = np.full((size, size, 3), 100, np.uint8)
    inp = truth.copy()
    inp[6:10, 6:10] = 200
    return inp, truth


def test_region_is_the_changed_square_dilated():
    inp, truth = square_case()
    region = M.attribute_region(inp[None], truth[None])[0]
    expect = np.zeros((16, 16), bool)
    expect[6 - M.REGION_DILATE:10 + M.REGION_DILATE, 6 - M.REGION_DILATE:10 + M.REGION_DILATE] = True
    assert np.array_equal(region, expect) and region.sum() == 64  # the 4x4 square grown by 2: 8x8
    # the threshold is strict and per channel: 16 is not over 16/255, 17 in one channel is
    a = np.zeros((1, 5, 5, 3), np.uint8)
    b = a.copy()
    b[0, 2, 2, 1] = M.REGION_THRESHOLD
    assert not M.attribute_region(a, b, radius=0).any()
    b[0, 2, 2, 1] = M.REGION_THRESHOLD + 1
    assert M.attribute_region(a, b, radius=0).sum() == 1 and M.attribute_region(a, b, radius=1).sum() == 9
    assert M.dilate(np.zeros((1, 3, 3), bool), 2).sum() == 0


@pytest.mark.parametrize("model", ["truth", "input", "blur", "worse"])
def test_region_metrics_on_constructed_models(tmp_path, model):
    inp, truth = square_case()
    if model == "truth":      # copies the truth: task done, rest kept
        out, region_l1, outside_l1, removed = truth, 0.0, 0.0, 1.0
    elif model == "input":    # copies the input: nothing done; 16 of 64 region pixels off by 100/255
        out, region_l1, outside_l1, removed = inp, 16 * 100 / 255 / 64, 0.0, 0.0
    elif model == "blur":     # blurs everything to the image's mean colour, round(100 + 16 * 100 / 256) = 106
        out = np.full_like(inp, int(round(inp.astype(float).mean())))
        assert out[0, 0, 0] == 106
        region_l1, outside_l1 = 6 / 255, 6 / 255
        removed = 1 - (6 / 255) / (16 * 100 / 255 / 64)  # 1 - 6/25 = 0.76: the square went, the face got worse
    else:                     # paints the square brighter: worse than doing nothing
        out = inp.copy()
        out[6:10, 6:10] = 255
        region_l1, outside_l1, removed = 16 * 155 / 255 / 64, 0.0, 1 - 155 / 100
    s = make_set(tmp_path, [inp], [out], [truth])
    assert compute("gt_l1_region", s)[0] == pytest.approx(region_l1, abs=1e-12)
    assert compute("gt_l1_outside", s)[0] == pytest.approx(outside_l1, abs=1e-12)
    assert compute("gt_region_removed", s)[0] == pytest.approx(removed, abs=1e-12)
    # the whole-image L1 mixes the two: (64 * region + 192 * outside) / 256
    assert compute("gt_l1", s)[0] == pytest.approx((64 * region_l1 + 192 * outside_l1) / 256, abs=1e-7)  # float32


def test_empty_regions_are_left_out_and_counted(tmp_path):
    inp, truth = square_case()
    same = np.full((16, 16, 3), 90, np.uint8)     # input == truth: no attribute, empty region
    out_same = same.copy()
    out_same[0, 0] = 120                           # one pixel of the output off by 30 (outside, since no region)
    s = make_set(tmp_path, [inp, same, inp], [truth, out_same, inp], [truth, same, None])
    ctx = EvalContext(s)
    region = REGISTRY["gt_l1_region"].compute(ctx)
    outside = REGISTRY["gt_l1_outside"].compute(ctx)
    removed = REGISTRY["gt_region_removed"].compute(ctx)
    assert region[0] == 0.0 and np.isnan(region[1]) and np.isnan(region[2])  # empty region; no truth
    assert removed[0] == 1.0 and np.isnan(removed[1]) and np.isnan(removed[2])
    assert outside[1] == pytest.approx(30 / 255 / 256) and np.isnan(outside[2])  # empty region: the whole image
    assert summarize(region)["n"] == 1 and summarize(outside)["n"] == 2
    note = ctx.notes["gt_l1_region"]
    assert "1 of 2 test images with a truth have an empty region" in note and "left out" in note
    assert f"{M.REGION_THRESHOLD}/255" in note and f"dilated by {M.REGION_DILATE} pixels" in note
    for name in ("gt_l1_region", "gt_l1_outside", "gt_region_removed"):
        d = REGISTRY[name].description
        assert f"{M.REGION_THRESHOLD}/255" in d and f"dilated by {M.REGION_DILATE} pixels" in d, d
        assert ("1 - (region L1" in d) if name == "gt_region_removed" else ("[0, 1] units" in d), d


def test_region_metrics_have_intervals_and_the_identity_baseline_scores_zero_removed(tmp_path):
    from pairlab.eval.evaluate import evaluate_output_set

    rng = np.random.default_rng(0)
    inputs, truths, outs = [], [], []
    for k in range(6):
        inp, truth = square_case()
        inp = np.clip(inp.astype(int) + rng.integers(-3, 4, inp.shape), 0, 255).astype(np.uint8)
        out = truth.copy()
        out[6:10, 6:10] = 100 + 20 * k         # removes more or less of the square per image
        inputs.append(inp), truths.append(truth), outs.append(out)
    res = evaluate_output_set(make_set(tmp_path, inputs, outs, truths), "gt_l1_region,gt_region_removed", n_boot=500)
    for name in ("gt_l1_region", "gt_region_removed"):
        s = res["metrics"][name]
        assert s["n"] == 6 and s["ci_low"] < s["mean"] < s["ci_high"], s
    # the identity map (output = input): nothing removed, whatever the image; input-vs-output metrics do not apply
    ident = evaluate_output_set(make_set(tmp_path / "id", inputs, inputs, truths),
                                "gt_l1,gt_region_removed,infosim,lpips_input,confidence_drop", baseline=True)
    s = ident["metrics"]["gt_region_removed"]
    assert s["mean"] == 0.0 and s["ci_low"] == 0.0 and s["ci_high"] == 0.0
    assert set(ident["not_applicable"]) == {"infosim", "lpips_input", "confidence_drop"}
    assert all(one_sentence(w) for w in ident["not_applicable"].values())
    assert "infosim" not in ident["unavailable"]
