import json
import math

import numpy as np
import pytest

from pairlab.data.celeba import CELEBA_EYE_DISTANCE, CELEBA_MEAN_LANDMARKS
from pairlab.data.synthesizers import (
    SMILE_TEMPLATES,
    SYNTHESIZERS,
    PseudoEyeglasses,
    PseudoSmile,
    bench,
    draw_simple_face,
    face_landmarks,
    get_synthesizer,
)
from pairlab.errors import UserError

EYE = SYNTHESIZERS["eyeglasses"]
SMILE = SYNTHESIZERS["smile"]


def _rotate(lm, deg, center):
    t = math.radians(deg)
    R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return ((np.asarray(lm, np.float64) - center) @ R.T + center).astype(np.float32)


def _dist_to_segment(xs, ys, p0, p1):
    d = p1 - p0
    L2 = float(d @ d)
    t = np.clip(((xs - p0[0]) * d[0] + (ys - p0[1]) * d[1]) / L2, 0, 1)
    return np.hypot(xs - (p0[0] + t * d[0]), ys - (p0[1] + t * d[1]))


# ------------------------------------------------------------------------------------------ registry
def test_registry_and_interface():
    assert isinstance(get_synthesizer("eyeglasses"), PseudoEyeglasses)
    assert isinstance(get_synthesizer("smile"), PseudoSmile)
    assert (EYE.name, EYE.task, EYE.attribute) == ("pseudo-eyeglasses", "eyeglasses", "Eyeglasses")
    assert (SMILE.name, SMILE.task, SMILE.attribute) == ("pseudo-smile", "smile", "Smiling")
    with pytest.raises(UserError):
        get_synthesizer("hair")
    for s in SYNTHESIZERS.values():
        json.dumps(s.param_ranges())


def test_bad_inputs_are_user_errors():
    img, lm = draw_simple_face(64, 64)
    rng = np.random.default_rng(0)
    for s in SYNTHESIZERS.values():
        with pytest.raises(UserError):
            s(img, np.zeros((5, 2)), rng)          # coincident landmarks
        with pytest.raises(UserError):
            s(img, lm[:3], rng)
        with pytest.raises(UserError):
            s(img.astype(np.float32), lm, rng)


# ------------------------------------------------------------------------------------------ eyeglasses
@pytest.mark.parametrize("size", [(178, 218), (64, 64)])
def test_eyeglasses_param_ranges(size):
    w, h = size
    lm = CELEBA_MEAN_LANDMARKS if size == (178, 218) else face_landmarks(w, h)
    scale = float(np.linalg.norm(lm[1] - lm[0])) / CELEBA_EYE_DISTANCE
    rng = np.random.default_rng(1)
    P = [EYE.sample_params(rng, lm) for _ in range(1000)]
    json.dumps(P)
    hh = np.array([p["height"] for p in P])
    ww = np.array([p["width"] for p in P])
    op = np.array([p["opacity"] for p in P])
    lw = np.array([p["line_width"] for p in P])
    assert hh.min() >= 10 and hh.max() <= 25 and hh.min() < 11 and hh.max() > 24
    assert np.all(ww >= hh / 2) and np.all(ww <= 2 * hh)
    assert op.min() >= 0.1 and op.max() <= 1.0 and op.min() < 0.15 and op.max() > 0.95
    assert np.all(lw >= hh / 5) and np.all(lw <= hh / 2)
    for p in P:
        assert p["scale"] == pytest.approx(scale)
        assert p["height_px"] == pytest.approx(p["height"] * scale)
        assert p["width_px"] == pytest.approx(p["width"] * scale)
        assert p["line_width_px"] == pytest.approx(p["line_width"] * scale)
        assert 10 * scale - 1e-6 <= p["height_px"] <= 25 * scale + 1e-6


def test_eyeglasses_scale_with_eye_distance():
    small = face_landmarks(64, 64)
    a = EYE.sample_params(np.random.default_rng(7), CELEBA_MEAN_LANDMARKS)
    b = EYE.sample_params(np.random.default_rng(7), small)
    for k in ("height", "width", "line_width", "opacity"):
        assert a[k] == b[k]                        # same draw in CelebA units
    ratio = float(np.linalg.norm(small[1] - small[0])) / CELEBA_EYE_DISTANCE
    assert a["scale"] == pytest.approx(1.0)
    assert b["height_px"] == pytest.approx(a["height_px"] * ratio)
    assert b["width_px"] == pytest.approx(a["width_px"] * ratio)
    # and the drawn glasses shrink accordingly
    img_a = np.full((218, 178, 3), 200, np.uint8)
    img_b = np.full((64, 64, 3), 200, np.uint8)
    pa = dict(a, opacity=1.0)
    pb = dict(b, opacity=1.0)
    na = (EYE.apply(img_a, CELEBA_MEAN_LANDMARKS, pa) != 200).any(-1).sum()
    nb = (EYE.apply(img_b, small, pb) != 200).any(-1).sum()
    assert nb / na == pytest.approx(ratio**2, rel=0.25)


@pytest.mark.parametrize("size,rot", [((178, 218), 0), ((128, 128), 0), ((64, 64), 0), ((128, 128), 25)])
def test_eyeglasses_only_near_the_eyes(size, rot):
    w, h = size
    base = CELEBA_MEAN_LANDMARKS if size == (178, 218) else face_landmarks(w, h)
    lm = _rotate(base, rot, np.array([w / 2, h / 2]))
    img, lm = draw_simple_face(w, h, landmarks=lm, seed=2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    seg = _dist_to_segment(xs, ys, lm[0].astype(np.float64), lm[1].astype(np.float64))
    rng = np.random.default_rng(3)
    for _ in range(30):
        out, p = EYE(img, lm, rng)
        assert out.dtype == np.uint8 and out.shape == img.shape
        changed = (out != img).any(-1)
        assert changed.any()
        reach = max(p["width_px"], p["height_px"]) / 2 + 1.0   # max ellipse extent + anti-aliasing
        assert not changed[seg > reach].any()
        # the eyes themselves are covered: darker (black glasses) wherever it changed
        for e in lm[:2]:
            x, y = int(round(e[0])), int(round(e[1]))
            assert changed[y, x]
        assert (out[changed].astype(int).sum(-1) <= img[changed].astype(int).sum(-1)).all()


def test_eyeglasses_shapes_and_antialiasing():
    img = np.full((218, 178, 3), 220, np.uint8)
    lm = CELEBA_MEAN_LANDMARKS
    p = EYE.sample_params(np.random.default_rng(0), lm)
    p.update(height=20.0, width=14.0, line_width=6.0, opacity=1.0, height_px=20.0, width_px=14.0, line_width_px=6.0)
    out = EYE.apply(img, lm, p)
    v = out[..., 0].astype(int)
    # ellipse centres fully black, an edge ring of partial coverage exists
    assert v[111, 69] == 0 and v[111, 107] == 0
    partial = (v > 0) & (v < 220)
    assert partial.sum() > 20
    # ellipse extent: 7 px along x, 10 px along y from each eye
    assert v[111, 69 - 9] == 220 and v[111 - 12, 69] == 220 and v[111 + 12, 107] == 220
    assert v[111 - 9, 69] == 0
    # the bridge joins the inner edges at eye height, about 6 px thick
    mid = 88
    col = v[:, mid]
    assert col[111] == 0 and col[111 - 5] == 220 and col[111 + 5] == 220
    # half opacity blends half-way
    out2 = EYE.apply(img, lm, dict(p, opacity=0.5))
    assert abs(int(out2[111, 69, 0]) - 110) <= 1


def test_eyeglasses_overlapping_lenses_no_line_and_colour():
    img = np.full((218, 178, 3), 200, np.uint8)
    p = EYE.sample_params(np.random.default_rng(0), CELEBA_MEAN_LANDMARKS)
    p.update(height=25.0, width=50.0, height_px=25.0, width_px=50.0, opacity=1.0, color=[255, 0, 0])
    out = EYE.apply(img, CELEBA_MEAN_LANDMARKS, p)
    assert tuple(out[111, 88]) == (255, 0, 0)      # lenses overlap in the middle; union drawn once
    red = PseudoEyeglasses(color=(200, 30, 30))
    _, q = red(img, CELEBA_MEAN_LANDMARKS, np.random.default_rng(0))
    assert q["color"] == [200, 30, 30]


def test_eyeglasses_deterministic_and_pure():
    img, lm = draw_simple_face(128, 128, seed=5)
    keep = img.copy()
    a, pa = EYE(img, lm, np.random.default_rng(11))
    b, pb = EYE(img, lm, np.random.default_rng(11))
    assert pa == pb and np.array_equal(a, b)
    assert np.array_equal(img, keep)
    c = EYE.apply(img, lm, json.loads(json.dumps(pa)))
    assert np.array_equal(a, c)
    # params in CelebA units alone reproduce the same picture
    only_celeba = {k: pa[k] for k in ("height", "width", "line_width", "opacity", "color")}
    assert np.abs(EYE.apply(img, lm, only_celeba).astype(int) - a).max() <= 1


# ------------------------------------------------------------------------------------------ smile
def _mouth_frame(lm):
    m = (lm[3] + lm[4]) / 2.0
    unit = float(np.linalg.norm(lm[4] - lm[3])) / 2.0
    return m.astype(np.float64), unit


@pytest.mark.parametrize("size", [(64, 64), (128, 128), (178, 218)])
@pytest.mark.parametrize("template", sorted(SMILE_TEMPLATES))
def test_smile_changes_mouth_only(size, template):
    w, h = size
    base = CELEBA_MEAN_LANDMARKS if size == (178, 218) else face_landmarks(w, h)
    img, lm = draw_simple_face(w, h, landmarks=base, seed=4)
    out = SMILE.apply(img, lm, {"template": template, "intensity": 1.0})
    assert out.dtype == np.uint8 and out.shape == img.shape
    changed = (out != img).any(-1)
    m, unit = _mouth_frame(lm)
    ys, xs = np.mgrid[0:h, 0:w]
    r = np.hypot(xs - m[0], ys - m[1])
    # something changes around the mouth corners...
    for c in lm[3:]:
        near = np.hypot(xs - c[0], ys - c[1]) < 0.5 * unit
        assert changed[near].sum() >= 3
    # ...and nothing far away: beyond the region's largest semi-axis (2.6 units, centre 0.1 units up)
    assert not changed[r > 2.75 * unit + 1].any()
    # eyes untouched, the nose tip (nearly) still
    assert not changed[: int(lm[:2, 1].max()) + 1].any()
    n = np.round(lm[2]).astype(int)
    fx, fy, _ = SMILE.displacement_field(lm, template, 1.0, (n[0], n[0] + 1, n[1], n[1] + 1))
    assert math.hypot(fx[0, 0], fy[0, 0]) < 0.05 * unit


def test_smile_rotated_face():
    w = h = 128
    base = face_landmarks(w, h)
    for deg in (-30, 15, 90):
        lm = _rotate(base, deg, np.array([64.0, 64.0]))
        img, lm = draw_simple_face(w, h, landmarks=lm, seed=1)
        out, p = SMILE(img, lm, np.random.default_rng(0))
        assert p["angle_deg"] == pytest.approx(deg, abs=1e-3)
        changed = (out != img).any(-1)
        assert changed.sum() > 20
        m, unit = _mouth_frame(lm)
        ys, xs = np.mgrid[0:h, 0:w]
        assert not changed[np.hypot(xs - m[0], ys - m[1]) > 2.75 * unit + 1].any()
    # the field turns with the face: corner displacement rotates with the landmarks
    upright = face_landmarks(400, 400, zoom=2.0)
    turned = _rotate(upright, 30, np.array([200.0, 200.0]))

    def corner_move(lm):
        c = np.round(lm[4]).astype(int)
        box = (c[0], c[0] + 1, c[1], c[1] + 1)
        fx, fy, _ = SMILE.displacement_field(lm, "broad", 1.0, box)
        return np.array([fx[0, 0], fy[0, 0]])

    d0, d1 = corner_move(upright), corner_move(turned)
    t = math.radians(30)
    R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    assert np.allclose(R @ d0, d1, atol=0.1 * np.linalg.norm(d0))
    assert d0[1] < 0 and d0[0] > 0                    # right corner moves up and out on an upright face


def test_smile_params_and_intensity():
    img, lm = draw_simple_face(128, 128, seed=2)
    rng = np.random.default_rng(0)
    P = [SMILE.sample_params(rng, lm) for _ in range(1000)]
    json.dumps(P)
    it = np.array([p["intensity"] for p in P])
    assert it.min() >= 0.6 and it.max() <= 1.0
    assert {p["template"] for p in P} == set(SMILE_TEMPLATES) and len(SMILE_TEMPLATES) >= 3
    p = P[0]
    assert p["max_displacement_px"] == pytest.approx(p["max_displacement"] * p["scale"])
    # more intensity, more change
    diffs = [np.abs(SMILE.apply(img, lm, {"template": "broad", "intensity": k}).astype(int) - img).sum()
             for k in (0.6, 0.8, 1.0)]
    assert diffs[0] < diffs[1] < diffs[2]
    assert np.array_equal(SMILE.apply(img, lm, {"template": "broad", "intensity": 0.0}), img)


def test_smile_errors_and_determinism():
    img, lm = draw_simple_face(64, 64)
    with pytest.raises(UserError):
        SMILE.apply(img, lm, {"template": "smirk", "intensity": 1.0})
    with pytest.raises(UserError):
        SMILE.apply(img, lm, {"intensity": 1.0})
    with pytest.raises(UserError):
        SMILE.describe(lm, "nope", 1.0)
    keep = img.copy()
    a, pa = SMILE(img, lm, np.random.default_rng(3))
    b, pb = SMILE(img, lm, np.random.default_rng(3))
    assert pa == pb and np.array_equal(a, b) and np.array_equal(img, keep)


def test_smile_field_is_a_smooth_invertible_warp():
    lm = face_landmarks(300, 300, zoom=2.0)
    box = SMILE.region_box(lm, 300, 300)
    _, unit = _mouth_frame(lm)
    for t in SMILE_TEMPLATES:
        fx, fy, inside = SMILE.displacement_field(lm, t, 1.0, box)
        det = (1 + np.gradient(fx, axis=1)) * (1 + np.gradient(fy, axis=0)) - np.gradient(fx, axis=0) * np.gradient(fy, axis=1)
        assert det.min() > 0.3                        # no fold-overs
        assert np.hypot(fx, fy).max() < 0.6 * unit
        assert np.all(fx[~inside] == 0) and np.all(fy[~inside] == 0)


def test_smile_on_mouth_at_image_edge():
    # a face partly outside the frame must not crash and must keep the frame size
    lm = face_landmarks(64, 64) + np.array([0.0, 20.0], np.float32)
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    out, _ = SMILE(img, lm, np.random.default_rng(0))
    assert out.shape == img.shape


def test_bench_runs():
    rates = bench(size=64, n=20, repeats=1)
    assert set(rates) == {"eyeglasses", "smile"} and all(v > 50 for v in rates.values())
