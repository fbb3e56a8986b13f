"""5-point facial landmarks from facenet-pytorch's MTCNN (weights ship inside the package; nothing downloads).

Landmark order is the CelebA / MTCNN one: left eye, right eye, nose, left mouth corner, right mouth corner,
as (x, y) pixel coordinates.

- ``detect_landmarks(images)`` -> one ``Detection`` (or None when no face is found) per image. Images of the
  same size are run as one batch; others one by one. When MTCNN finds several faces the largest box is kept
  and ``n_faces`` says how many there were.
- ``landmarks_for_paths(paths, cache_file)`` reads files safely (``load_rgb``), detects, reports skipped
  files with a short reason, and caches results in a JSON file that a second call reuses.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import BadImage, UserError
from .images import load_rgb

NO_FACE = "no face found"
CACHE_VERSION = 1
BATCH_SIZE = 16


@dataclass(frozen=True)
class Detection:
    landmarks: np.ndarray   # (5, 2) float32, (x, y)
    box: np.ndarray         # (4,) float32, x0 y0 x1 y1 (may reach outside the image)
    prob: float
    n_faces: int = 1

    def to_json(self) -> dict:
        return {
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "box": [round(float(v), 2) for v in self.box],
            "prob": round(float(self.prob), 5),
            "n_faces": int(self.n_faces),
        }

    @classmethod
    def from_json(cls, d: dict) -> "Detection":
        return cls(
            landmarks=np.asarray(d["landmarks"], dtype=np.float32).reshape(5, 2),
            box=np.asarray(d["box"], dtype=np.float32).reshape(4),
            prob=float(d["prob"]),
            n_faces=int(d.get("n_faces", 1)),
        )


# ------------------------------------------------------------------------------------------ MTCNN
_MTCNN: dict[str, object] = {}
_LOCK = threading.Lock()


def _resolve_device(device=None) -> str:
    import torch

    if device is not None:
        return str(device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def get_mtcnn(device=None):
    """The MTCNN detector for a device, built once and cached."""
    dev = _resolve_device(device)
    with _LOCK:
        if dev not in _MTCNN:
            try:
                from facenet_pytorch import MTCNN
            except ImportError:
                raise UserError("Face landmarks need the facenet-pytorch package; install it with pip.")
            _MTCNN[dev] = MTCNN(keep_all=True, device=dev)
        return _MTCNN[dev]


def _one_detection(boxes, probs, points) -> Detection | None:
    """Convert MTCNN's per-image output (object arrays under numpy 2, or None) into a Detection."""
    if boxes is None or points is None:
        return None
    try:
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2)
    except (TypeError, ValueError):
        return None
    if len(b) == 0 or len(pts) != len(b):
        return None
    p = np.asarray(probs if probs is not None else [], dtype=object).reshape(-1)
    pr = np.array([float(x) if x is not None else np.nan for x in p], dtype=np.float32)
    if len(pr) != len(b):
        pr = np.full(len(b), np.nan, dtype=np.float32)
    ok = np.all(np.isfinite(b), axis=1) & np.all(np.isfinite(pts), axis=(1, 2))
    if not ok.any():
        return None
    b, pts, pr = b[ok], pts[ok], pr[ok]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    i = int(np.argmax(area))
    return Detection(landmarks=pts[i].copy(), box=b[i].copy(), prob=float(pr[i]), n_faces=int(len(b)))


def detections_from_mtcnn(boxes, probs, points, n_images: int) -> list[Detection | None]:
    """Convert the output of ``MTCNN.detect(batch, landmarks=True)`` for a batch of n_images."""
    out = []
    for i in range(n_images):
        bi = None if boxes is None else boxes[i]
        pi = None if probs is None else probs[i]
        qi = None if points is None else points[i]
        out.append(_one_detection(bi, pi, qi))
    return out


def _as_rgb_array(image) -> np.ndarray:
    from PIL import Image

    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise UserError(f"Face detection needs RGB images; got an array of shape {arr.shape}.")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _detect_batch(mtcnn, arrays: list[np.ndarray]) -> list[Detection | None]:
    try:
        boxes, probs, points = mtcnn.detect(np.stack(arrays), landmarks=True)
        return detections_from_mtcnn(boxes, probs, points, len(arrays))
    except (ValueError, RuntimeError, IndexError):
        if len(arrays) == 1:
            return [None]  # MTCNN cannot run on this image (e.g. too small for its pyramid)
        return [r for a in arrays for r in _detect_batch(mtcnn, [a])]


def detect_landmarks(images: Sequence, device=None, batch_size: int = BATCH_SIZE) -> list[Detection | None]:
    """One Detection (largest face) or None per image; PIL images or HxWx3 arrays."""
    arrays = [_as_rgb_array(im) for im in images]
    if not arrays:
        return []
    mtcnn = get_mtcnn(device)
    results: list[Detection | None] = [None] * len(arrays)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape[:2], []).append(i)
    import torch

    with torch.no_grad():
        for idx in groups.values():
            for s in range(0, len(idx), max(int(batch_size), 1)):
                chunk = idx[s:s + batch_size]
                for i, det in zip(chunk, _detect_batch(mtcnn, [arrays[i] for i in chunk])):
                    results[i] = det
    return results


# ------------------------------------------------------------------------------------------ files + cache
def _read_cache(cache_file: Path | None) -> dict:
    if cache_file is None or not Path(cache_file).exists():
        return {}
    try:
        data = json.loads(Path(cache_file).read_text())
        if data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
            return {}
        return data["entries"]
    except (OSError, ValueError, AttributeError):
        return {}  # an unreadable cache is rebuilt, never an error


def _write_cache(cache_file: Path, entries: dict) -> None:
    cache_file = Path(cache_file)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    from ..workspace import write_json_atomic

    write_json_atomic(cache_file, {"version": CACHE_VERSION, "entries": entries}, indent=0, sort_keys=True)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def landmarks_for_paths(
    paths: Iterable[str | os.PathLike],
    cache_file: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    device=None,
    batch_size: int = BATCH_SIZE,
    keys: Iterable[str] | None = None,
) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """Landmarks for image files, keyed by file name, and the skipped files as (name, reason).

    Reasons are BadImage's short categories ("corrupt image", ...) or "no face found". With ``cache_file``,
    results (including "no face found") are stored per file name and size, and reused on the next call;
    unreadable files are not cached, so a fixed file is tried again. ``keys`` names each path instead of its
    file name (a source passes its sample names, so trainA/x.jpg and trainB/x.jpg stay apart).
    """
    paths = [Path(p) for p in paths]
    keys = list(keys) if keys is not None else [p.name for p in paths]
    key_of = dict(zip(paths, keys))
    cache = _read_cache(Path(cache_file)) if cache_file is not None else {}
    found: dict[str, np.ndarray] = {}
    skipped: list[tuple[str, str]] = []
    todo: list[tuple[Path, int]] = []
    total, done = len(paths), 0
    changed = False

    for p in paths:
        size = _file_size(p)
        entry = cache.get(key_of[p])
        if entry is not None and entry.get("size") == size and size >= 0:
            if entry.get("skipped"):
                skipped.append((key_of[p], entry["skipped"]))
            else:
                try:
                    found[key_of[p]] = Detection.from_json(entry["detection"]).landmarks
                except (KeyError, TypeError, ValueError):
                    todo.append((p, size))
                    continue
            done += 1
            continue
        todo.append((p, size))
    if progress and done:
        progress(done, total)

    for s in range(0, len(todo), max(int(batch_size) * 4, 1)):
        chunk = todo[s:s + max(int(batch_size) * 4, 1)]
        images, keep = [], []
        for p, size in chunk:
            try:
                images.append(load_rgb(p))
                keep.append((p, size))
            except BadImage as exc:
                skipped.append((key_of[p], exc.reason))
                done += 1
        dets = detect_landmarks(images, device=device, batch_size=batch_size) if images else []
        for (p, size), det in zip(keep, dets):
            if det is None:
                skipped.append((key_of[p], NO_FACE))
                cache[key_of[p]] = {"size": size, "skipped": NO_FACE}
            else:
                record = det.to_json()
                found[key_of[p]] = Detection.from_json(record).landmarks  # same values as a cached reload
                cache[key_of[p]] = {"size": size, "detection": record}
            changed = True
            done += 1
        if progress:
            progress(done, total)

    if cache_file is not None and changed:
        _write_cache(Path(cache_file), cache)
    return found, skipped
