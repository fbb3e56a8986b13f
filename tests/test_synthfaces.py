"""SynthFaces: the seeded procedural face dataset in the CelebA layout, with ground-truth toggles."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from pairlab.data import celeba
from pairlab.data import synthfaces as sf
from pairlab.data.images import load_rgb_array
from pairlab.errors import UserError


def _faces(seed: int, n: int, **overrides):
    """n (identity, state) pairs; overrides are applied to every state (e.g. eyeglasses=False)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        idn = sf.sample_identity(rng)
        st = sf.sample_state(idn, rng)
        st.update(overrides)
        out.append((idn, st))
    return out


def _lum(img: np.ndarray) -> np.ndarray:
    return img[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "faces"
    calls = []
    summary = sf.generate(out, count=60, size=64, seed=3, progress=lambda f, m: calls.append((f, m)))
    return out, summary, calls


# ------------------------------------------------------------------------------------------- layout
def test_layout_and_formats(dataset):
    out, summary, _ = dataset
    names = [f"{i:06d}.jpg" for i in range(1, 61)]
    assert sorted(p.name for p in (out / celeba.IMAGE_DIR).iterdir()) == names
    img = load_rgb_array(out / celeba.IMAGE_DIR / names[0])
    assert img.shape == (64, 64, 3)

    header, attrs = celeba.read_attr_file(out / celeba.ATTR_FILE)
    assert header == list(celeba.ATTRIBUTES) and sorted(attrs) == names
    assert (out / celeba.ATTR_FILE).read_text().splitlines()[0] == "60"
    col = {a: i for i, a in enumerate(header)}
    for vals in attrs.values():
        assert vals[col["High_Cheekbones"]] == vals[col["Smiling"]]
        assert vals[col["No_Beard"]] == 1
        assert vals[col["Blurry"]] == -1 and vals[col["Wearing_Hat"]] == -1
        if vals[col["Mouth_Slightly_Open"]] == 1:
            assert vals[col["Smiling"]] == 1
        hair = [vals[col[a]] for a in ("Black_Hair", "Blond_Hair", "Brown_Hair")]
        assert sum(v == 1 for v in hair) <= 1

    lms = celeba.read_landmark_file(out / celeba.LANDMARK_FILE)
    assert sorted(lms) == names
    pts = np.stack([lms[n] for n in names])
    assert pts.min() >= 0 and pts.max() < 64
    assert np.all(pts[:, 0, 0] < pts[:, 1, 0]) and np.all(pts[:, 3, 0] < pts[:, 4, 0])  # left is image left
    mean = pts.mean(axis=0) / 64.0
    expected = celeba.CELEBA_MEAN_LANDMARKS / np.array(celeba.CELEBA_SIZE, dtype=np.float32)
    assert np.abs(mean - expected).max() < 0.04  # CelebA's aligned geometry, scaled to the square

    parts = celeba.read_pairs_file(out / celeba.PARTITION_FILE, "partition")
    ids = celeba.read_pairs_file(out / celeba.IDENTITY_FILE, "identity")
    assert sorted(parts) == names and sorted(ids) == names
    assert set(parts.values()) == {0, 1, 2}
    assert min(ids.values()) == 1

    truth = celeba.read_truth_file(out / celeba.TRUTH_FILE)
    assert sorted(truth) == names
    for name in names:
        stem = name[:-4]
        assert truth[name] == {"Eyeglasses": f"truth/{stem}_Eyeglasses.jpg", "Smiling": f"truth/{stem}_Smiling.jpg"}
        for rel in truth[name].values():
            assert (out / rel).is_file()

    meta = json.loads((out / sf.META_FILE).read_text())
    assert meta["generator"] == "synthfaces" and meta["version"] == sf.VERSION
    assert (meta["count"], meta["size"], meta["seed"]) == (60, 64, 3)
    assert "seconds" not in json.dumps(meta)
    assert meta["summary"]["identities"] == summary["identities"] == len(set(ids.values()))
    assert summary["count"] == 60 and summary["seconds"] >= 0
    rates = summary["attribute_rates"]
    got = np.mean([v[col["Eyeglasses"]] == 1 for v in attrs.values()])
    assert rates["Eyeglasses"] == pytest.approx(got, abs=1e-3)
    assert not list(out.parent.glob(".tmp-*"))


def test_identities_repeat_and_partition_by_identity(dataset):
    out, _, _ = dataset
    parts = celeba.read_pairs_file(out / celeba.PARTITION_FILE, "partition")
    ids = celeba.read_pairs_file(out / celeba.IDENTITY_FILE, "identity")
    per_id: dict[int, set] = {}
    for name, ident in ids.items():
        per_id.setdefault(ident, set()).add(parts[name])
    assert all(len(p) == 1 for p in per_id.values())  # no identity in two partitions
    counts = np.bincount(list(ids.values()))[1:]
    assert counts.max() >= 3 and len(per_id) < 60 / 2
    assert sorted(per_id) == list(range(1, len(per_id) + 1))


def test_progress_is_reported(dataset):
    _, _, calls = dataset
    fracs = [f for f, _ in calls]
    assert fracs[0] == 0.0 and fracs[-1] == 1.0
    assert all(a <= b for a, b in zip(fracs, fracs[1:]))
    assert len(calls) >= 20 and all(isinstance(m, str) and m for _, m in calls)


def test_truth_images_match_the_renderer(dataset):
    """truth/ holds the same identity and state with one attribute toggled."""
    out, _, _ = dataset
    identities, owners, states, _ = sf._plan(60, 3)
    attrs = celeba.read_attr_file(out / celeba.ATTR_FILE)[1]
    col = celeba.ATTRIBUTES.index("Eyeglasses")
    for i in (0, 7):
        name = f"{i + 1:06d}.jpg"
        idn, st = identities[owners[i]], states[i]
        assert attrs[name][col] == (1 if st["eyeglasses"] else -1)
        base = load_rgb_array(out / celeba.IMAGE_DIR / name).astype(int)
        for attr in celeba.TRUTH_ATTRIBUTES:
            want = sf.render_face(idn, sf.toggled(st, attr), 64)[0].astype(int)
            got = load_rgb_array(out / f"truth/{name[:-4]}_{attr}.jpg").astype(int)
            assert np.abs(got - want).mean() < 3.0  # only JPEG noise
            assert np.abs(got - base).mean() > 0.2  # the toggle is visible


# --------------------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = sf.generate(tmp_path / "a", count=10, size=64, seed=11)
    b = sf.generate(tmp_path / "b", count=10, size=64, seed=11)
    c = sf.generate(tmp_path / "c", count=10, size=64, seed=12)
    fa, fb, fc = _all_files(tmp_path / "a"), _all_files(tmp_path / "b"), _all_files(tmp_path / "c")
    assert fa == fb
    assert a["attribute_rates"] == b["attribute_rates"]
    imgs = [k for k in fa if k.startswith(celeba.IMAGE_DIR)]
    assert sum(fa[k] != fc.get(k) for k in imgs) == len(imgs)
    assert c["seed"] == 12


def test_render_is_pure():
    idn, st = _faces(5, 1)[0]
    before = copy.deepcopy((idn, st))
    img1, lm1 = sf.render_face(idn, st, 96)
    img2, lm2 = sf.render_face(idn, st, 96)
    assert (idn, st) == before
    assert img1.shape == (96, 96, 3) and img1.dtype == np.uint8
    assert lm1.shape == (5, 2) and lm1.dtype == np.float32
    assert np.array_equal(img1, img2) and np.array_equal(lm1, lm2)
    both = sf.render_with_truth(idn, st, 96)
    assert np.array_equal(both["image"], img1)
    assert np.array_equal(both["Eyeglasses"], sf.render_face(idn, sf.toggled(st, "Eyeglasses"), 96)[0])
    assert np.array_equal(both["Smiling"], sf.render_face(idn, sf.toggled(st, "Smiling"), 96)[0])


# ----------------------------------------------------------------------------------------- sampling
def test_attribute_rates_independence_and_propensity():
    rng = np.random.default_rng(0)
    g, s, pairs = [], [], []
    for _ in range(200):
        idn = sf.sample_identity(rng)
        sts = [sf.sample_state(idn, rng) for _ in range(4)]
        g += [st["eyeglasses"] for st in sts]
        s += [st["smiling"] for st in sts]
        pairs += [(sts[0]["eyeglasses"], sts[1]["eyeglasses"])]
    g, s = np.array(g), np.array(s)
    assert 0.33 < g.mean() < 0.47
    assert 0.43 < s.mean() < 0.57
    assert abs((g & s).mean() - g.mean() * s.mean()) < 0.04  # independent
    a, b = np.array(pairs).T
    assert np.corrcoef(a, b)[0, 1] > 0.25  # an identity-level propensity for glasses


def test_identities_vary_in_many_factors():
    rng = np.random.default_rng(1)
    ids = [sf.sample_identity(rng) for _ in range(200)]
    assert len({i["face"]["shape"] for i in ids}) >= 4
    assert len({i["hair"]["colour"] for i in ids}) >= 5
    assert len({i["hair"]["style"] for i in ids}) >= 7
    assert len({tuple(i["eyes"]["iris"]) for i in ids}) >= 5
    tones = np.array([i["skin"] for i in ids]).mean(axis=1)
    assert tones.max() - tones.min() > 120
    assert np.std([i["nose"]["w"] for i in ids]) > 0.02 and np.std([i["mouth"]["hw"] for i in ids]) > 0.02
    assert len({sf.sample_state(ids[0], rng)["glasses"]["style"] for _ in range(60)}) >= 3
    assert sum(i["hair"]["style"] == "bald" for i in ids) >= 2


# ------------------------------------------------------------------------------ ground-truth regions
@pytest.mark.parametrize("seed", [21, 22])
def test_toggles_change_only_their_region(seed):
    for idn, st in _faces(seed, 6):
        out = sf.render_with_truth(idn, st, 128)
        lm = out["landmarks"]
        D = float(lm[1, 0] - lm[0, 0])
        eye_y, mouth_y = float(lm[:2, 1].mean()), float(lm[3:, 1].mean())
        mouth_x = float(lm[3:, 0].mean())
        yy, xx = np.mgrid[0:128, 0:128]

        d = np.abs(out["image"].astype(int) - out["Eyeglasses"].astype(int)).max(axis=-1)
        assert d[np.abs(yy - eye_y) > 0.6 * D].max() == 0  # nothing changes away from the eye line
        for ex, ey in lm[:2]:
            near = (np.abs(xx - ex) < 0.3 * D) & (np.abs(yy - ey) < 0.3 * D)
            assert d[near].max() > 10  # the lenses/rims are around both eyes
        assert (d > 0).mean() < 0.2

        d = np.abs(out["image"].astype(int) - out["Smiling"].astype(int)).max(axis=-1)
        region = (yy > eye_y) & (yy < mouth_y + 0.6 * D) & (np.abs(xx - mouth_x) < 1.3 * D)
        assert d[~region].max() == 0  # nothing changes outside the mouth and cheeks
        near_mouth = (np.abs(xx - mouth_x) < 0.4 * D) & (np.abs(yy - mouth_y) < 0.25 * D)
        assert d[near_mouth].max() > 20


def test_landmarks_lie_on_the_drawn_features():
    """Paint the features in marker colours and check the landmark pixels."""
    for idn, st in _faces(31, 8, eyeglasses=False):
        idn = copy.deepcopy(idn)
        idn["eyes"]["iris"] = [0, 0, 255]
        idn["mouth"]["rgb"] = [0, 255, 0]
        idn["mouth"]["lipstick"] = True
        for smiling in (False, True):
            st = dict(st, smiling=smiling)
            img, lm = sf.render_face(idn, st, 128)
            D = float(lm[1, 0] - lm[0, 0])
            f = img.astype(int)
            for ex, ey in lm[:2]:  # eye centre: on the iris/pupil, darker than the white of the eye beside it
                x, y = int(round(ex)), int(round(ey))
                patch = f[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3)
                assert patch[:, 2].mean() > patch[:, 0].mean() + 10 or _lum(patch).mean() < 60
                sclera = max(_lum(f[y, x + k]) for k in (-5, -4, 4, 5))
                assert _lum(patch).mean() < sclera - 40
            green = f[..., 1] - np.maximum(f[..., 0], f[..., 2])
            for k, sgn in ((3, 1), (4, -1)):  # mouth corners: the lips end there
                cx, cy = lm[k]
                y = int(round(cy))
                xs = sorted(int(round(cx + sgn * t * D)) for t in (0.06, 0.2))
                assert green[y - 2:y + 4, xs[0]:xs[1] + 1].max() > 25, "lip colour just inside the corner"
                xs = sorted(int(round(cx - sgn * t * D)) for t in (0.12, 0.25))
                assert green[y - 1:y + 2, xs[0]:xs[1] + 1].max() < 10, "no lips outside the corner"
            nx, ny = lm[2]  # nose tip: between the eyes, above the mouth, with the nostrils just below
            assert lm[0, 0] < nx < lm[1, 0] and lm[0, 1] < ny < lm[3:, 1].min()
            x, y = int(round(nx)), int(round(ny))
            win = _lum(f[y:y + int(0.2 * D), x - int(0.3 * D):x + int(0.3 * D) + 1])
            assert win.min() < _lum(f[y - int(0.3 * D), x]) - 25


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("size", [63, 257, 0, 1000, 128.0, "128", True])
def test_size_bounds(tmp_path, size):
    idn, st = _faces(0, 1)[0]
    with pytest.raises(UserError, match="size"):
        sf.render_face(idn, st, size)
    with pytest.raises(UserError, match="size"):
        sf.generate(tmp_path / "x", count=2, size=size)
    assert not (tmp_path / "x").exists()


def test_extreme_sizes_render():
    idn, st = _faces(2, 1)[0]
    for size in (64, 256):
        img, lm = sf.render_face(idn, st, size)
        assert img.shape == (size, size, 3) and (lm >= 0).all() and (lm < size).all()


def test_bad_count_and_existing_folder(tmp_path):
    with pytest.raises(UserError, match="count"):
        sf.generate(tmp_path / "x", count=0)
    (tmp_path / "exists").mkdir()
    with pytest.raises(UserError, match="already exists"):
        sf.generate(tmp_path / "exists", count=2, size=64)
    assert list((tmp_path / "exists").iterdir()) == []


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    real = sf.save_image
    calls = []

    def flaky(img, path, quality=95):
        calls.append(path)
        if len(calls) == 7:
            raise OSError("disk full")
        real(img, path, quality=quality)

    monkeypatch.setattr(sf, "save_image", flaky)
    with pytest.raises(OSError):
        sf.generate(tmp_path / "faces", count=5, size=64)
    assert list(tmp_path.iterdir()) == []

    def stop(frac, msg):
        if frac > 0.5:
            raise KeyboardInterrupt

    monkeypatch.setattr(sf, "save_image", real)
    with pytest.raises(KeyboardInterrupt):
        sf.generate(tmp_path / "faces", count=60, size=64, progress=stop)
    assert list(tmp_path.iterdir()) == []


def test_bench_reports_throughput():
    r = sf.bench(size=64, n=6, repeats=1)
    assert r["size"] == 64 and r["n"] == 6
    assert r["render_per_s"] > 0 and r["render_jpeg_per_s"] > 0
