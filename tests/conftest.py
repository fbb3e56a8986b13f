"""Shared fixtures: an isolated workspace, a small SynthFaces source, and a CelebA-format fixture."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# The real CelebA headers, verbatim (list_attr_celeba.txt's second line ends with a space).
CELEBA_ATTR_HEADER = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young "
)
CELEBA_LANDMARK_HEADER = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty PAIRLAB_HOME for one test."""
    path = tmp_path / "workspace"
    monkeypatch.setenv("PAIRLAB_HOME", str(path))
    monkeypatch.delenv("PAIRLAB_DATA_ROOTS", raising=False)
    return path


@pytest.fixture(scope="session")
def synthfaces_root(tmp_path_factory) -> Path:
    """300 SynthFaces at 64x64, rendered once per test session."""
    from pairlab.data import synthfaces

    out = tmp_path_factory.mktemp("sf") / "synthfaces-300"
    synthfaces.generate(out, count=300, size=64, seed=3)
    return out


def draw_face(w: int, h: int, lm: np.ndarray, glasses: bool, smile: bool, seed: int) -> Image.Image:
    """A crude face for reader tests: only the file format matters there."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(40, 200, 3)))
    d = ImageDraw.Draw(img)
    d.ellipse([w * 0.2, h * 0.25, w * 0.8, h * 0.85], fill=(224, 180, 150))
    for x, y in lm[:2]:
        d.ellipse([x - 4, y - 3, x + 4, y + 3], fill=(40, 30, 30))
        if glasses:
            d.ellipse([x - 12, y - 9, x + 12, y + 9], outline=(10, 10, 10), width=2)
    (lx, ly), (rx, ry) = lm[3], lm[4]
    d.line([lx, ly, (lx + rx) / 2, ly + (6 if smile else 0), rx, ry], fill=(150, 40, 50), width=3)
    return img


def make_celeba(root: Path, n: int = 40, size=(178, 218), bad: dict | None = None) -> Path:
    """A CelebA-layout folder in the exact real file format (JPEG 178x218 by default).

    ``bad`` maps an image index to raw bytes to write instead of a valid JPEG.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "img_align_celeba").mkdir()
    attr_lines, lm_lines, part_lines, id_lines = [str(n), CELEBA_ATTR_HEADER], [str(n), CELEBA_LANDMARK_HEADER], [], []
    names = CELEBA_ATTR_HEADER.split()
    w, h = size
    sx, sy = w / 178, h / 218
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        glasses, smile = i % 3 == 0, i % 2 == 0
        vals = [-1] * 40
        vals[names.index("Eyeglasses")] = 1 if glasses else -1
        vals[names.index("Smiling")] = 1 if smile else -1
        vals[names.index("Young")] = 1
        attr_lines.append(name + " " + " ".join(f"{v:2d}" for v in vals))
        lm = np.array([[69, 111], [107, 112], [88, 135], [72, 152], [105, 153]], dtype=float) * [sx, sy]
        lm += (i % 5) - 2
        lm_lines.append(name + " " + " ".join(f"{int(round(v)):4d}" for v in lm.ravel()))
        part_lines.append(f"{name} {0 if i <= n * 0.7 else (1 if i <= n * 0.8 else 2)}")
        id_lines.append(f"{name} {1000 + i // 3}")
        path = root / "img_align_celeba" / name
        if bad and i in bad:
            path.write_bytes(bad[i])
        else:
            draw_face(w, h, lm, glasses, smile, i).save(path, quality=90)
    (root / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
    (root / "list_landmarks_align_celeba.txt").write_text("\n".join(lm_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(part_lines) + "\n")
    (root / "identity_CelebA.txt").write_text("\n".join(id_lines) + "\n")
    return root


@pytest.fixture
def celeba_root(tmp_path) -> Path:
    return make_celeba(tmp_path / "celeba")


def tiny_config(**overrides):
    """A training config small enough for tests: 32x32, ngf 8, one residual block, two iterations."""
    from pairlab.train import TrainConfig

    base = dict(image_size=32, ngf=8, ndf=8, n_blocks=1, max_iters=2, n_epochs=1, n_epochs_decay=1, save_every=2,
                sample_every=2, log_every=1, threads=2, n_samples=1)
    base.update(overrides)
    return TrainConfig(**base)
