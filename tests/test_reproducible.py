"""Same bytes on every CPU: SynthFaces renders, synthesizer outputs and compositions.

The golden hashes below were computed on an AMD EPYC (AVX-512) machine with OpenBLAS forced to its Haswell kernels;
the subprocess tests render again with numpy's optional SIMD paths disabled and with other OpenBLAS kernels and
compare bytes. Before pairlab.data.exact existed, OPENBLAS_CORETYPE=SkylakeX alone changed the render bytes.
"""
import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pairlab.data import compose, exact, synthfaces
from pairlab.data.celeba import CELEBA_EYE_DISTANCE
from pairlab.data.recipes import Recipe
from pairlab.data.sources import open_source

REPO = Path(__file__).resolve().parents[1]

# sha1 of render bytes (image, both truths, landmarks) of synthfaces._plan(8, 0) at each size
GOLDEN_RENDER = {
    64: "ebecbcb05d9886f00424d8b72e78b5c263d35a96",
    128: "0783a0a894feff29c7b602f4c1f99dc65f7827f9",
}
# sha1 over every file of a 120-face SynthFaces folder at 64 px, seed 3
GOLDEN_DATASET = "6f057a5d5aa40473c6a60037f7124ec5b75c6fd4"
# sha1 over the images and manifests of small compositions of every recipe built from that folder
# (the manifests name alpha_target / alpha_measured since the redesign; their bytes alone changed the value)
GOLDEN_COMPOSITIONS = "61e39e6862ff706bd8d89e4e0f878d4928cbe493"

RECIPES = {
    "alpha": dict(kind="alpha-paired", alpha=0.5),
    "alpha-mixed": dict(kind="alpha-paired", alpha=0.25, disjoint_identities=False),
    "none": dict(kind="pseudo", augmentation="none"),
    "natural": dict(kind="pseudo", augmentation="natural"),
    "pseudo-unpaired": dict(kind="pseudo", augmentation="pseudo-unpaired"),
    "pseudo-paired": dict(kind="pseudo", augmentation="pseudo-paired", pseudo_alpha=0.75),
    "explicit": dict(kind="explicit", pairs_from="pseudo"),
    "explicit-true": dict(kind="explicit", pairs_from="true"),
    "smile": dict(kind="pseudo", task="smile", augmentation="pseudo-paired", pseudo_alpha=1.0),
    "resized-up": dict(kind="pseudo", augmentation="pseudo-paired", pseudo_alpha=0.5, image_size=96),
    "kmedoids": dict(kind="alpha-paired", alpha=0.5, selection="kmedoids", paired_copies=1),
}


def render_hash(count: int, size: int) -> str:
    h = hashlib.sha1()
    ids, owners, states, _ = synthfaces._plan(count, 0)
    for o, s in zip(owners, states):
        out = synthfaces.render_with_truth(ids[o], s, size)
        for k in ("image", "Eyeglasses", "Smiling"):
            h.update(out[k].tobytes())
        h.update(out["landmarks"].tobytes())
    return h.hexdigest()


def folder_hash(folder: Path) -> str:
    h = hashlib.sha1()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def stable_manifest(folder: Path) -> dict:
    """The manifest without what names the machine or the moment (paths, version)."""
    m = json.loads((folder / "manifest.json").read_text())
    m.pop("pairlab_version", None)
    m["source"].pop("root", None)
    return m


def compositions_hash(source_dir: Path, out: Path) -> str:
    source = open_source(source_dir, "celeba")
    h = hashlib.sha1()
    for name, kw in RECIPES.items():
        recipe = Recipe(**dict(dict(task="eyeglasses", n=8, n_test=4, image_size=48, seed=1), **kw)).validate()
        folder = compose.compose(source, recipe, name=name, out_root=out)
        h.update(name.encode())
        for split in sorted(p.name for p in folder.iterdir() if p.is_dir()):
            for p in sorted((folder / split).iterdir()):
                h.update(f"{split}/{p.name}".encode())
                h.update(p.read_bytes())
        h.update(json.dumps(stable_manifest(folder), sort_keys=True).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small_source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sf") / "sf"
    synthfaces.generate(folder, count=120, size=64, seed=3)
    return folder


# ----------------------------------------------------------------------------- the exact arithmetic
def test_exact_functions_are_accurate():
    rng = np.random.default_rng(1)
    x = rng.uniform(-30, 30, 20000)
    y = np.abs(x) + 1e-4
    assert np.max(np.abs(exact.exp(x / 3) / np.exp(x / 3) - 1)) < 1e-13
    assert np.max(np.abs(exact.log(y) - np.log(y))) < 1e-13
    assert np.max(np.abs(exact.power(y, 0.8) / y ** 0.8 - 1)) < 1e-13
    assert np.max(np.abs(exact.sin(x) - np.sin(x))) < 1e-14
    assert np.max(np.abs(exact.cos(x) - np.cos(x))) < 1e-14
    assert np.max(np.abs(exact.arctan2(x, x[::-1]) - np.arctan2(x, x[::-1]))) < 1e-14
    assert exact.arctan2(0.0, -1.0) == pytest.approx(np.pi) and exact.arctan2(0.0, 0.0) == 0.0
    assert exact.power(0.0, 0.5) == 0.0 and exact.power(0.0, 0.0) == 1.0 and exact.log(0.0) == -np.inf
    a = rng.normal(size=(12, 12)) + 4 * np.eye(12)
    b = rng.normal(size=(12, 3))
    assert np.allclose(exact.solve(a, b), np.linalg.solve(a, b), atol=1e-12)
    assert np.allclose(exact.matmul(a, b), a @ b, atol=1e-12)
    assert np.allclose(exact.inv2(a[:2, :2]), np.linalg.inv(a[:2, :2]), atol=1e-12)


def test_scalar_and_array_paths_give_the_same_bits():
    x = np.random.default_rng(2).uniform(-50, 50, 500)
    for v, w in zip(x, x[::-1]):
        s, c = exact.sincos(v)
        sa, ca = exact.sincos(np.array([v]))
        assert (s, c) == (sa[0], ca[0])
        assert exact.exp(v / 10) == exact.exp(np.array([v / 10]))[0]
        assert exact.arctan2(v, w) == exact.arctan2(np.array([v]), np.array([w]))[0]
        assert exact.hypot(v, w) == exact.hypot(np.array([v]), np.array([w]))[0]


@pytest.mark.parametrize("shape", [(7, 5, 3), (40, 21, 2, 44), (1, 1, 1), (33, 64, 9)])
def test_sum_of_products_adds_in_index_order(shape):
    rng = np.random.default_rng(3)
    a = rng.normal(size=shape[:2])
    b = rng.normal(size=shape[1:])
    ref = a[:, 0].reshape((-1,) + (1,) * (b.ndim - 1)) * b[0]
    for k in range(1, shape[1]):
        ref = ref + a[:, k].reshape((-1,) + (1,) * (b.ndim - 1)) * b[k]
    assert np.array_equal(exact.sum_of_products(a, b), ref)


# ----------------------------------------------------------------------------- golden bytes
@pytest.mark.parametrize("size", [64, 128])
def test_synthfaces_render_matches_the_golden_hash(size):
    assert render_hash(8, size) == GOLDEN_RENDER[size]


def test_synthfaces_dataset_and_compositions_match_the_golden_hashes(small_source, tmp_path):
    assert folder_hash(small_source) == GOLDEN_DATASET
    assert compositions_hash(small_source, tmp_path / "c") == GOLDEN_COMPOSITIONS


def _cpu_variants() -> list[dict]:
    """Environments that make numpy and OpenBLAS take other code paths on this CPU."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    optional = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
    variants = []
    if optional:
        variants.append({"NPY_DISABLE_CPU_FEATURES": ",".join(optional)})
    if platform.machine() in ("x86_64", "AMD64"):
        variants.append({"OPENBLAS_CORETYPE": "Prescott"})  # SSE3 kernels, no FMA
        if __cpu_features__.get("AVX512F"):
            variants.append({"OPENBLAS_CORETYPE": "SkylakeX"})
        if __cpu_features__.get("AVX2"):
            variants.append({"OPENBLAS_CORETYPE": "Haswell"})
    return variants


SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import test_reproducible as t
print(t.render_hash(4, 64), t.render_hash(2, 128), t.compositions_hash(Path({src!r}), Path({out!r})))
"""


@pytest.mark.parametrize("variant", _cpu_variants(), ids=lambda v: ",".join(f"{k}={v[k]}" for k in v))
def test_other_cpu_code_paths_give_the_same_bytes(variant, small_source, tmp_path):
    here = f"{render_hash(4, 64)} {render_hash(2, 128)} {compositions_hash(small_source, tmp_path / 'here')}"
    env = dict(os.environ, **variant, PYTHONPATH=str(REPO))
    code = SCRIPT.format(tests=str(REPO / "tests"), src=str(small_source), out=str(tmp_path / "there"))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == here.split()


# ----------------------------------------------------------------------------- glasses at the paper's scale
def _lens_height(a: np.ndarray, b: np.ndarray, x: float, half_width: float) -> int:
    """Rows where the pseudo-sample differs clearly from its b, in a few columns around the eye."""
    diff = np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 60
    cols = slice(max(int(round(x - half_width)), 0), int(round(x + half_width)) + 1)
    rows = np.nonzero(diff[:, cols].any(axis=1))[0]
    return int(rows.max() - rows.min() + 1) if len(rows) else 0


@pytest.mark.parametrize("image_size", [48, 128])
def test_pseudo_glasses_are_drawn_at_the_written_images_scale(small_source, tmp_path, image_size):
    """64-px SynthFaces written at 48 px (smaller) and 128 px (larger): the lens height follows the written eyes."""
    source = open_source(small_source, "celeba")
    recipe = Recipe(kind="pseudo", augmentation="pseudo-paired", pseudo_alpha=0.5, n=12, n_test=2, seed=4,
                    image_size=image_size).validate()
    folder = compose.compose(source, recipe, name="glasses", out_root=tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    by_name = {s.name: s for s in source.samples}
    checked = 0
    for e in manifest["images"]["trainA"]:
        if e["provenance"] != "pseudo" or not e.get("pair"):
            continue
        p = e["params"]
        sample = by_name[e["pseudo_of"]]
        _, lm = compose.prepare(sample.ref.load(), sample.landmarks, image_size)
        eye_d = float(np.hypot(*(lm[1] - lm[0])))
        want = p["height"] * eye_d / CELEBA_EYE_DISTANCE
        # the manifest records the CelebA-unit values and the pixel values used, on the written image
        assert p["height_px"] == pytest.approx(want, rel=1e-4)
        assert p["eye_distance_px"] == pytest.approx(eye_d, rel=1e-4)
        assert p["width_px"] == pytest.approx(p["width"] * eye_d / CELEBA_EYE_DISTANCE, rel=1e-4)
        if p["opacity"] < 0.6 or p["width_px"] > 0.8 * eye_d:
            continue  # faint or touching lenses: not measurable from pixels
        a = np.asarray(Image.open(folder / "trainA" / e["file"]).convert("RGB"))
        b = np.asarray(Image.open(folder / "trainB" / e["pair"]).convert("RGB"))
        drawn = _lens_height(a, b, float(lm[0][0]), max(p["width_px"] / 6, 1.0))
        assert abs(drawn - want) <= 0.2 * want + 2.5, (drawn, want, e["file"])
        checked += 1
    assert checked >= 2


def test_the_preview_draws_what_the_build_writes(small_source, tmp_path):
    source = open_source(small_source, "celeba")
    recipe = Recipe(kind="pseudo", augmentation="pseudo-paired", pseudo_alpha=1.0, n=6, n_test=2, seed=5,
                    image_size=96).validate()
    shown = compose.preview(source, recipe, count=3)["examples"]
    folder = compose.compose(source, recipe, name="pv", out_root=tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    pseudo = [e for e in manifest["images"]["trainA"] if e["provenance"] == "pseudo" and "copy_of" not in e][:3]
    for (img, caption), e in zip(shown, pseudo):
        left = np.asarray(img)[:, :96].astype(int)
        written = np.asarray(Image.open(folder / "trainA" / e["file"]).convert("RGB")).astype(int)
        assert np.abs(left - written).mean() < 2.0  # the same drawing, up to JPEG
        assert f"height={e['params']['height']:.3g}" in caption
