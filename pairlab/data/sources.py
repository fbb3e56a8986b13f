"""Sources: readable image collections and what they know. One reader class per folder layout.

- ``CelebASource``: ``img_align_celeba/`` + CelebA list files (real CelebA at any size, and SynthFaces,
  which adds ``list_truth_synthfaces.txt``: true counterparts, so it is also a *paired* source).
- ``UnalignedSource``: ``trainA/ trainB/ testA/ testB/`` (the CycleGAN layout).
- ``AlignedSource``: pix2pix folders of A|B side-by-side images (``train/``, ``val/``, ``test/``).

Every source answers the same questions: ``domain(task, side, partition)`` lists the real images of a
domain (A = with the attribute, B = without), ``pairs(task, partition)`` lists true (a, T(a)) pairs when it
knows them, ``landmarks_for(samples)`` returns 5-point landmarks (from the source's file, else MTCNN).
Images are not decoded when a source is opened; bad files are found and skipped when they are used.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import BadImage, UserError
from . import celeba
from .images import is_image_name, load_rgb

PARTITIONS = ("train", "val", "test")
CELEBA_PARTITION = {0: "train", 1: "val", 2: "test"}


@dataclass(frozen=True)
class ImageRef:
    """Where an image lives: a file, or the left/right half of an aligned A|B file."""

    path: Path
    half: str | None = None  # None, "left" or "right"

    @property
    def key(self) -> str:
        return f"{self.path.name}#{self.half}" if self.half else self.path.name

    def load(self) -> Image.Image:
        img = load_rgb(self.path)
        if self.half is None:
            return img
        w, h = img.size
        if w < 2 * 8:
            raise BadImage(self.path, "not an A|B image", f"{w}x{h} pixels is too narrow to split")
        box = (0, 0, w // 2, h) if self.half == "left" else (w // 2, 0, w // 2 * 2, h)
        return img.crop(box)


class AttrRow(Mapping):
    """One image's ±1 attributes as a read-only mapping over a shared name index.

    Real CelebA has 202,599 rows of 40 attributes; a dict per row would cost hundreds of MB."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: np.ndarray):
        self._index, self._values = index, values

    def __getitem__(self, name: str) -> int:
        return int(self._values[self._index[name]])

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


@dataclass
class Sample:
    """One real image of a source and what the source knows about it."""

    name: str  # unique within the source, e.g. "000001.jpg" or "trainA/x.png"
    ref: ImageRef
    partition: str  # train | val | test
    attrs: Mapping[str, int] | None = None
    landmarks: np.ndarray | None = None
    identity: int | None = None
    domain: str | None = None  # "A" / "B" where the layout says so
    truth: dict[str, ImageRef] | None = None  # attribute -> the same image with it toggled


@dataclass
class Pair:
    """A true pair (a, T(a)). ``real_side`` says which side is the source's own image."""

    name: str
    a: ImageRef
    b: ImageRef
    partition: str
    real_side: str = "both"  # "a", "b" or "both"
    sample: Sample | None = None
    a_name: str = ""  # how the manifest names each side (the sample's name, or the truth file's path)
    b_name: str = ""


@dataclass
class Source:
    kind: str
    root: Path
    samples: list[Sample]
    knows: tuple[str, ...]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _fingerprint: str | None = None

    # ------------------------------------------------------------------ descriptions
    @property
    def name(self) -> str:
        return self.root.name

    def fingerprint(self) -> str:
        """A short hash of the file listing and the metadata files: same data, same fingerprint."""
        if self._fingerprint is None:
            h = hashlib.sha1(self.kind.encode())
            for s in sorted(self.samples, key=lambda s: s.name):
                h.update(s.name.encode())
                h.update(str(s.partition).encode())
            for meta in sorted(self.root.glob("*.txt")) + sorted(self.root.glob("*.json")):
                h.update(meta.name.encode())
                h.update(hashlib.sha1(meta.read_bytes()).digest())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def describe(self) -> dict:
        counts = {p: sum(1 for s in self.samples if s.partition == p) for p in PARTITIONS}
        return {
            "kind": self.kind,
            "root": str(self.root),
            "name": self.name,
            "fingerprint": self.fingerprint(),
            "images": len(self.samples),
            "partitions": counts,
            "knows": list(self.knows),
            "skipped": len(self.skipped),
            "notes": list(self.notes),
        }

    def tasks(self) -> list[str]:
        """The tasks this source can serve: attribute tasks need attributes; folder layouts serve 'A->B'."""
        if "attributes" in self.knows:
            names = set(self.samples[0].attrs or {}) if self.samples else set()
            return [t for t, attr in celeba.TASK_ATTRIBUTE.items() if attr in names]
        return ["folders"]

    # ------------------------------------------------------------------ domains and pairs
    def _check_task(self, task: str) -> str | None:
        if task == "folders":
            if "domains" not in self.knows and "pairs" not in self.knows:
                raise UserError(f"The {self.kind} source has no A/B folders; choose an attribute task.")
            return None
        if task not in celeba.TASK_ATTRIBUTE:
            raise UserError(f"Unknown task '{task}'; choose one of: {', '.join(celeba.TASK_ATTRIBUTE)}, folders.")
        if "attributes" not in self.knows:
            # Folder layouts: the user says what A and B are; the task only picks the synthesizer.
            return None
        attr = celeba.TASK_ATTRIBUTE[task]
        if self.samples and attr not in (self.samples[0].attrs or {}):
            raise UserError(f"This source's attribute file has no '{attr}' column, so it cannot serve the {task} task.")
        return attr

    def domain(self, task: str, side: str, partition: str) -> list[Sample]:
        """Real images of domain ``side`` ('A' = with the attribute, 'B' = without) in a partition."""
        attr = self._check_task(task)
        if attr is not None:
            want = 1 if side == "A" else -1
            return [s for s in self.samples if s.partition == partition and s.attrs and s.attrs.get(attr) == want]
        if "domains" in self.knows:
            return [s for s in self.samples if s.partition == partition and s.domain == side]
        if "pairs" in self.knows:  # aligned: each side of an A|B file is an image of that domain
            return [
                Sample(s.name + f"#{side}", ImageRef(s.ref.path, "left" if side == "A" else "right"), s.partition)
                for s in self.samples
                if s.partition == partition
            ]
        raise UserError(f"The {self.kind} source cannot tell domain {side} apart for the {task} task.")

    def pairs(self, task: str, partition: str) -> list[Pair]:
        """True pairs (a, T(a)); raises a clear error for sources that do not know any."""
        if "pairs" not in self.knows:
            raise UserError(
                f"The {self.kind} source '{self.name}' knows no true pairs; alpha-paired datasets need a paired "
                "source (SynthFaces or aligned A|B folders). Use a pseudo-pair recipe instead."
            )
        if self.kind == "aligned":
            return [
                Pair(s.name, ImageRef(s.ref.path, "left"), ImageRef(s.ref.path, "right"), s.partition, "both", s,
                     f"{s.name}#A", f"{s.name}#B")
                for s in self.samples
                if s.partition == partition
            ]
        attr = self._check_task(task)
        out = []
        for s in self.samples:
            if s.partition != partition or not s.truth or attr not in s.truth:
                continue
            truth_name = str(s.truth[attr].path.relative_to(self.root))
            if s.attrs.get(attr) == 1:
                out.append(Pair(s.name, s.ref, s.truth[attr], partition, "a", s, s.name, truth_name))
            else:
                out.append(Pair(s.name, s.truth[attr], s.ref, partition, "b", s, truth_name, s.name))
        return out

    def truth_of(self, sample: Sample, task: str) -> ImageRef | None:
        attr = celeba.TASK_ATTRIBUTE.get(task)
        if sample.truth and attr in sample.truth:
            return sample.truth[attr]
        return None

    # ------------------------------------------------------------------ landmarks
    def landmarks_cache_file(self) -> Path:
        from .. import workspace

        return workspace.sub("cache") / f"landmarks-{self.kind}-{self.fingerprint()}.json"

    def landmarks_for(self, samples: list[Sample]) -> list[tuple[Sample, np.ndarray | None, str]]:
        """Landmarks per sample: from the source's file when known, else MTCNN (cached per source).

        Returns (sample, landmarks or None, reason when None)."""
        missing = [s for s in samples if s.landmarks is None]
        found: dict[str, np.ndarray] = {}
        reasons: dict[str, str] = {}
        if missing:
            from .landmarks import landmarks_for_paths

            got, skipped = landmarks_for_paths([s.ref.path for s in missing], cache_file=self.landmarks_cache_file(),
                                               keys=[s.name for s in missing])
            reasons = dict(skipped)
            found = {name: np.asarray(pts, dtype=np.float32) for name, pts in got.items()}
        out = []
        for s in samples:
            pts = s.landmarks if s.landmarks is not None else found.get(s.name)
            out.append((s, pts, "" if pts is not None else reasons.get(s.name, "no face found")))
        return out


# ====================================================================================== readers
def _hash_partition(name: str) -> str:
    """A stable 80/10/10 split for layouts with no partition file."""
    v = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 10
    return "train" if v < 8 else ("val" if v == 8 else "test")


def read_celeba(root: Path) -> Source:
    root = Path(root)
    img_dir = root / celeba.IMAGE_DIR
    if not img_dir.is_dir():
        raise UserError(f"{root} has no {celeba.IMAGE_DIR}/ folder, so it is not in the CelebA layout.")
    listed, skipped = _scan_images(img_dir, root, f"{celeba.IMAGE_DIR}/")
    on_disk = set(listed)
    knows = []
    notes: list[str] = []

    attrs: dict[str, np.ndarray] = {}
    attr_names: list[str] = []
    if (root / celeba.ATTR_FILE).exists():
        attr_names, attrs = celeba.read_attr_file(root / celeba.ATTR_FILE)
        knows.append("attributes")
    else:
        notes.append(f"No {celeba.ATTR_FILE}: images cannot be split by attribute.")
    landmarks: dict[str, np.ndarray] = {}
    if (root / celeba.LANDMARK_FILE).exists():
        landmarks = celeba.read_landmark_file(root / celeba.LANDMARK_FILE)
        knows.append("landmarks")
    else:
        notes.append(f"No {celeba.LANDMARK_FILE}: landmarks will come from MTCNN.")
    partition: dict[str, int] = {}
    if (root / celeba.PARTITION_FILE).exists():
        partition = celeba.read_pairs_file(root / celeba.PARTITION_FILE, "partition")
        knows.append("partition")
    else:
        notes.append(f"No {celeba.PARTITION_FILE}: using a stable 80/10/10 split by file name.")
    identity: dict[str, int] = {}
    if (root / celeba.IDENTITY_FILE).exists():
        identity = celeba.read_pairs_file(root / celeba.IDENTITY_FILE, "identity")
        knows.append("identities")
    truth: dict[str, dict[str, str]] = {}
    if (root / celeba.TRUTH_FILE).exists():
        truth = celeba.read_truth_file(root / celeba.TRUTH_FILE)
        knows.append("pairs")

    if truth:
        truth, bad_truth = _checked_truth(root, truth)
        skipped += bad_truth
    names = sorted(attrs) if attrs else sorted(on_disk)
    attr_index = {a: i for i, a in enumerate(attr_names)}
    samples = []
    outside = {n.split("/", 1)[1] for n, r in skipped if r == OUTSIDE and n.startswith(celeba.IMAGE_DIR + "/")}
    for name in names:
        if name not in on_disk:
            if name not in outside:
                skipped.append((name, "missing file"))
            continue
        a = attrs.get(name)
        part = partition.get(name)
        samples.append(
            Sample(
                name=name,
                ref=ImageRef(img_dir / name),
                partition=CELEBA_PARTITION.get(part, "train") if part is not None else _hash_partition(name),
                attrs=AttrRow(attr_index, a) if a is not None else None,
                landmarks=landmarks.get(name),
                identity=identity.get(name),
                truth={k: ImageRef(root / v) for k, v in truth[name].items()} if name in truth else None,
            )
        )
    if attrs and len(on_disk) > len(attrs):
        notes.append(f"{len(on_disk) - len(set(attrs) & on_disk)} images on disk are not in {celeba.ATTR_FILE} and are ignored.")
    if not samples:
        raise UserError(f"{root} holds no usable images" + _skip_hint(skipped) + ".")
    kind = "synthfaces" if (root / "synthfaces.json").exists() else "celeba"
    return Source(kind, root, samples, tuple(knows), skipped, notes)


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _permitted_roots(root: Path) -> list[str]:
    """Where a source's files may really lie: the allowed roots (workspace, PAIRLAB_DATA_ROOTS) and the source."""
    from .. import workspace

    return [str(r) for r in workspace.allowed_roots()] + [os.path.realpath(root)]


OUTSIDE = "symlink to a file outside the allowed folders"


def _scan_images(folder: Path, root: Path, prefix: str = "") -> tuple[list[str], list[tuple[str, str]]]:
    """The image files of a folder (sorted) and the skipped entries with their reason.

    A symlink (or a file in a linked folder) whose target lies outside the allowed roots is skipped and never
    opened; so are broken links and files that are not images by their extension (dotfiles are ignored)."""
    roots = _permitted_roots(root)
    folder_ok = _inside(os.path.realpath(folder), roots)
    names, skipped = [], []
    for e in os.scandir(folder):
        if e.name.startswith("."):
            continue
        shown = prefix + e.name
        if e.is_symlink() or not folder_ok:
            target = os.path.realpath(e.path)
            if not _inside(target, roots):
                skipped.append((shown, OUTSIDE))
                continue
            if not os.path.exists(target):
                skipped.append((shown, "broken symlink"))
                continue
        if not e.is_file():
            continue
        if not is_image_name(e.name):
            skipped.append((shown, f"not an image file type ({os.path.splitext(e.name)[1] or 'no extension'})"))
            continue
        names.append(e.name)
    return sorted(names), sorted(skipped)


def _list_images(folder: Path) -> list[str]:
    return _scan_images(folder, folder)[0]


def _checked_truth(root: Path, truth: dict) -> tuple[dict, list[tuple[str, str]]]:
    """Drop truth entries that point out of the allowed roots (``../`` in the list file, or a linked folder)."""
    roots = _permitted_roots(root)
    base = os.path.realpath(root)
    real_dirs: dict[str, bool] = {}
    out, skipped = {}, []
    for name, entries in truth.items():
        kept = {}
        for attr, rel in entries.items():
            path = os.path.normpath(os.path.join(base, rel))
            parent = os.path.dirname(path)
            if parent not in real_dirs:
                real_dirs[parent] = _inside(os.path.realpath(parent), roots)
            ok = _inside(path, [base]) and real_dirs[parent]
            if ok and os.path.islink(path):
                ok = _inside(os.path.realpath(path), roots)
            if ok:
                kept[attr] = rel
            else:
                skipped.append((str(rel), "truth file outside the allowed folders"))
        out[name] = kept
    return out, skipped


def read_unaligned(root: Path) -> Source:
    root = Path(root)
    samples = []
    skipped: list[tuple[str, str]] = []
    found = False
    for domain in ("A", "B"):
        for split, partition in (("train", "train"), ("test", "test")):
            folder = root / f"{split}{domain}"
            if not folder.is_dir():
                continue
            found = True
            names, bad = _scan_images(folder, root, f"{split}{domain}/")
            skipped += bad
            for name in names:
                samples.append(Sample(f"{split}{domain}/{name}", ImageRef(folder / name), partition, domain=domain))
    if not found:
        raise UserError(f"{root} has none of trainA/ trainB/ testA/ testB/, so it is not an unaligned folder.")
    if not samples:
        raise UserError(f"{root} holds no images in trainA/ trainB/ testA/ testB/" + _skip_hint(skipped) + ".")
    return Source("unaligned", root, samples, ("domains", "partition"), skipped)


def _skip_hint(skipped: list[tuple[str, str]]) -> str:
    if not skipped:
        return ""
    name, reason = skipped[0]
    return f" ({len(skipped)} skipped, e.g. {name}: {reason})"


def read_aligned(root: Path) -> Source:
    root = Path(root)
    samples = []
    skipped: list[tuple[str, str]] = []
    for split, partition in (("train", "train"), ("val", "val"), ("test", "test")):
        folder = root / split
        if folder.is_dir():
            names, bad = _scan_images(folder, root, f"{split}/")
            skipped += bad
            samples += [Sample(f"{split}/{n}", ImageRef(folder / n), partition) for n in names]
    if not samples:
        raise UserError(f"{root} has no images in train/, val/ or test/, so it is not an aligned A|B folder"
                        + _skip_hint(skipped) + ".")
    return Source("aligned", root, samples, ("pairs", "partition"), skipped)


READERS = {"celeba": read_celeba, "unaligned": read_unaligned, "aligned": read_aligned}


def detect_layout(root: Path) -> str:
    root = Path(root)
    if (root / celeba.IMAGE_DIR).is_dir():
        return "celeba"
    if any((root / f"{s}{d}").is_dir() for s in ("train", "test") for d in ("A", "B")):
        return "unaligned"
    if any((root / s).is_dir() for s in ("train", "val", "test")):
        return "aligned"
    raise UserError(
        f"{root} is not a known layout: expected img_align_celeba/ (CelebA), trainA/ trainB/ (unaligned) "
        "or train/ with A|B images (aligned)."
    )


def recorded_source_root(info: Mapping) -> Path | None:
    """The folder of a source as a composition manifest records it (``{"root", "name", ...}``): the recorded path,
    or, when the workspace was moved or copied, the folder of the same name in this workspace's ``sources/``;
    None when neither exists."""
    from .. import workspace

    root = info.get("root")
    candidates = [Path(root)] if root else []
    name = info.get("name") or (Path(root).name if root else None)
    if name:
        candidates.append(workspace.sub("sources") / name)
    return next((c for c in candidates if c.is_dir()), None)


def open_source(root: str | os.PathLike, layout: str | None = None) -> Source:
    """Open a folder as a source; the layout is detected unless given."""
    root = Path(root).expanduser().resolve()  # recorded resolved: no '..', no links
    if not root.is_dir():
        raise UserError(f"{root} is not a folder.")
    layout = layout or detect_layout(root)
    if layout not in READERS:
        raise UserError(f"Unknown layout '{layout}'; choose one of: {', '.join(READERS)}.")
    return READERS[layout](root)


def source_summary_json(source: Source) -> str:
    return json.dumps(source.describe(), indent=1)
