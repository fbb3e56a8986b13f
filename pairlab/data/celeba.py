"""The CelebA file layout, shared by the reader (real CelebA, SynthFaces) and the SynthFaces writer.

Formats (exactly as the real dataset ships them):
- ``list_attr_celeba.txt``: line 1 the image count, line 2 the 40 attribute names, then
  ``000001.jpg -1  1 ...`` with values in {-1, 1}.
- ``list_landmarks_align_celeba.txt``: count, a header of 10 column names, then 5 (x, y) points
  (left eye, right eye, nose, left mouth corner, right mouth corner) per image.
- ``list_eval_partition.txt``: ``000001.jpg 0`` (0 train, 1 validation, 2 test); no header.
- ``identity_CelebA.txt``: ``000001.jpg 2880``; no header.
- SynthFaces adds ``list_truth_synthfaces.txt``: count, a header ``Eyeglasses Smiling``, then per image
  the relative paths of the same identity and pose rendered with that attribute toggled (the true T(a)).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError

ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
assert len(ATTRIBUTES) == 40

LANDMARK_COLUMNS = (
    "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
    "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
).split()

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
LANDMARK_FILE = "list_landmarks_align_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
TRUTH_FILE = "list_truth_synthfaces.txt"
TRUTH_ATTRIBUTES = ("Eyeglasses", "Smiling")

# The tasks pairlab studies: A = with the attribute, B = without (removal), as in paper 000.
TASK_ATTRIBUTE = {"eyeglasses": "Eyeglasses", "smile": "Smiling"}

# Mean landmarks of CelebA's aligned 178x218 crops; used to scale synthesizer ranges and to align.
CELEBA_SIZE = (178, 218)
CELEBA_MEAN_LANDMARKS = np.array(
    [[69.0, 111.0], [107.5, 111.0], [88.0, 135.0], [72.0, 152.0], [105.0, 152.0]], dtype=np.float32
)
CELEBA_EYE_DISTANCE = float(np.sqrt(np.sum((CELEBA_MEAN_LANDMARKS[1] - CELEBA_MEAN_LANDMARKS[0]) ** 2)))  # no BLAS


# ----------------------------------------------------------------------------------------- writing
def write_attr_file(path: Path, rows: list[tuple[str, dict[str, int]]]) -> None:
    """rows: (image name, {attribute: +1/-1}); attributes not given are written as -1."""
    lines = [str(len(rows)), " ".join(ATTRIBUTES) + " "]
    for name, values in rows:
        vals = " ".join(f"{values.get(a, -1):2d}" for a in ATTRIBUTES)
        lines.append(f"{name} {vals}")
    Path(path).write_text("\n".join(lines) + "\n")


def write_landmark_file(path: Path, rows: list[tuple[str, np.ndarray]]) -> None:
    lines = [str(len(rows)), " ".join(LANDMARK_COLUMNS)]
    for name, pts in rows:
        flat = np.rint(np.asarray(pts, dtype=np.float64).reshape(-1)).astype(int)
        lines.append(name + " " + " ".join(f"{v:4d}" for v in flat))
    Path(path).write_text("\n".join(lines) + "\n")


def write_pairs_file(path: Path, rows: list[tuple[str, object]]) -> None:
    """For the partition and identity files: ``name value`` per line, no header."""
    Path(path).write_text("".join(f"{name} {value}\n" for name, value in rows))


def write_truth_file(path: Path, rows: list[tuple[str, dict[str, str]]]) -> None:
    lines = [str(len(rows)), " ".join(TRUTH_ATTRIBUTES)]
    for name, truth in rows:
        lines.append(name + " " + " ".join(truth[a] for a in TRUTH_ATTRIBUTES))
    Path(path).write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------- reading
def _lines(path: Path) -> list[str]:
    try:
        text = Path(path).read_text(errors="strict")
    except UnicodeDecodeError:
        raise UserError(f"{Path(path).name} is not a text file.")
    return [ln for ln in text.splitlines() if ln.strip()]


def read_attr_file(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Returns (attribute names, {image: int8 array of +1/-1})."""
    lines = _lines(path)
    if len(lines) < 2:
        raise UserError(f"{Path(path).name} is malformed: it needs a count line and a header line.")
    names = lines[1].split()
    if not names:
        raise UserError(f"{Path(path).name} is malformed: its header line lists no attributes.")
    out: dict[str, np.ndarray] = {}
    for i, ln in enumerate(lines[2:], start=3):
        parts = ln.split()
        if len(parts) != len(names) + 1:
            raise UserError(
                f"{Path(path).name} is malformed at line {i}: expected {len(names) + 1} fields, found {len(parts)}."
            )
        try:
            vals = np.array([int(v) for v in parts[1:]], dtype=np.int8)
        except ValueError:
            raise UserError(f"{Path(path).name} is malformed at line {i}: attribute values must be -1 or 1.")
        if not np.all(np.abs(vals) == 1):
            raise UserError(f"{Path(path).name} is malformed at line {i}: attribute values must be -1 or 1.")
        out[parts[0]] = vals
    return names, out


def read_landmark_file(path: Path) -> dict[str, np.ndarray]:
    lines = _lines(path)
    if len(lines) < 2:
        raise UserError(f"{Path(path).name} is malformed: it needs a count line and a header line.")
    out: dict[str, np.ndarray] = {}
    for i, ln in enumerate(lines[2:], start=3):
        parts = ln.split()
        if len(parts) != 11:
            raise UserError(f"{Path(path).name} is malformed at line {i}: expected an image name and 10 numbers.")
        try:
            out[parts[0]] = np.array([float(v) for v in parts[1:]], dtype=np.float32).reshape(5, 2)
        except ValueError:
            raise UserError(f"{Path(path).name} is malformed at line {i}: landmark coordinates must be numbers.")
    return out


def read_pairs_file(path: Path, kind: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, ln in enumerate(_lines(path), start=1):
        parts = ln.split()
        if len(parts) != 2:
            raise UserError(f"{Path(path).name} is malformed at line {i}: expected '<image> <{kind}>'.")
        try:
            out[parts[0]] = int(parts[1])
        except ValueError:
            raise UserError(f"{Path(path).name} is malformed at line {i}: the {kind} must be a whole number.")
    return out


def read_truth_file(path: Path) -> dict[str, dict[str, str]]:
    lines = _lines(path)
    if len(lines) < 2:
        raise UserError(f"{Path(path).name} is malformed: it needs a count line and a header line.")
    names = lines[1].split()
    out: dict[str, dict[str, str]] = {}
    for i, ln in enumerate(lines[2:], start=3):
        parts = ln.split()
        if len(parts) != len(names) + 1:
            raise UserError(f"{Path(path).name} is malformed at line {i}.")
        out[parts[0]] = dict(zip(names, parts[1:]))
    return out
