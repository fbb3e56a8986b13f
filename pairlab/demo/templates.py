"""Where a checkpoint's training crops have the five face landmarks: the template the demo aligns new faces onto.

    template, how = composition_template(comp_dir, size)   # the mean landmarks of a composition's training images
    template, how = run_template(run_dir, size)            # a run's (from its composition), cached in the run folder

Used by the Demo tab's translation (``translate.py``) and by the shipped demo's build (``shipped.py``, which writes
it into each manifest); it imports neither of them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .. import workspace
from ..errors import UserError
from ..train.run import Run

RUN_TEMPLATE_FILE = "demo_template.json"  # the cached template, in the run folder
TEMPLATE_LIMIT = 400     # training images averaged for a run's template
MTCNN_TEMPLATE_LIMIT = 24  # composition images sent to MTCNN when the source has no landmark file


def _read_json(path: Path) -> dict:
    return workspace.read_json(path) or {}


def _prepared(lm: np.ndarray, src_wh: tuple[int, int], recipe_size: int) -> np.ndarray:
    """Landmarks through compose.prepare (centre square crop + resize; 0 keeps the image)."""
    if not recipe_size:
        return lm
    w, h = src_wh
    side = min(w, h)
    return (lm - [(w - side) // 2, (h - side) // 2]) * (recipe_size / side)


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as im:  # the header only
            return im.size
    except (OSError, ValueError):
        return None


def composition_template(comp_dir, size: int, limit: int = TEMPLATE_LIMIT) -> tuple[np.ndarray | None, str]:
    """Where the training crops of a composition have the five landmarks, once resized to a model's ``size``.

    From the source's landmark file when it has one (exact), else MTCNN on a few of the composition's training
    images; (None, reason) when neither works."""
    from ..data import celeba
    from ..data.compose import load_manifest

    comp_dir = Path(comp_dir)
    m = load_manifest(comp_dir)
    recipe_size = int((m.get("recipe") or {}).get("image_size") or 0)
    src = m.get("source") or {}
    roots = [Path(src["root"])] if src.get("root") else []
    if src.get("name"):
        roots.append(workspace.sub("sources") / src["name"])  # a moved workspace
    root = next((r for r in roots if (r / celeba.LANDMARK_FILE).is_file()), None)
    entries = [(split, e) for split in ("trainA", "trainB") for e in m.get("images", {}).get(split, [])]
    if root is not None:
        try:
            lms = celeba.read_landmark_file(root / celeba.LANDMARK_FILE)
        except UserError:
            lms = {}
        pts, src_sizes = [], {}
        for split, e in entries:
            name = e.get("source")
            if name not in lms:
                continue  # e.g. a ground-truth render: same landmarks as its sample, which is counted anyway
            if name not in src_sizes:
                src_sizes[name] = _image_size(root / celeba.IMAGE_DIR / name)
            comp_wh = _image_size(comp_dir / split / e["file"])
            if src_sizes[name] is None or comp_wh is None:
                continue
            p = _prepared(np.asarray(lms[name], np.float64), src_sizes[name], recipe_size)
            pts.append(p * [size / comp_wh[0], size / comp_wh[1]])  # the model's resize of the training image
            if len(pts) >= limit:
                break
        if pts:
            return np.mean(pts, axis=0), f"the mean landmarks of {len(pts)} training images"
    # No landmark file: ask MTCNN about a few training images as they are stored in the composition.
    from ..data.landmarks import landmarks_for_paths

    paths = [comp_dir / split / e["file"] for split, e in entries if e.get("provenance") != "pseudo"][:MTCNN_TEMPLATE_LIMIT]
    found, _ = landmarks_for_paths(paths, keys=[str(p) for p in paths]) if paths else ({}, [])
    pts = []
    for key, lm in found.items():
        wh = _image_size(Path(key))
        if wh:
            pts.append(np.asarray(lm, np.float64) * [size / wh[0], size / wh[1]])
    if pts:
        return np.mean(pts, axis=0), f"MTCNN landmarks of {len(pts)} training images"
    return None, "no landmarks of its training images are known"


def _cache_file(run: Run) -> Path:
    """Where a run keeps its demo template: the one file the demo adds to a run folder."""
    return run.cache_path(RUN_TEMPLATE_FILE)


def run_template(run_dir, size: int) -> tuple[np.ndarray | None, str]:
    """A run's template (see composition_template), cached in the run folder until its composition changes."""
    from ..eval.outputs import run_composition

    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    try:
        comp = run_composition(run.path)
    except UserError as exc:
        return None, str(exc).rstrip(".")
    try:
        stamp = (comp / "manifest.json").stat().st_mtime_ns
    except OSError:
        stamp = 0
    key = {"composition": str(comp), "manifest_mtime_ns": stamp, "size": int(size)}
    cached = _read_json(_cache_file(run))
    if cached.get("key") == key and cached.get("template") is not None:
        return np.asarray(cached["template"], np.float64), cached.get("from", "")
    template, how = composition_template(comp, size)
    if template is not None:
        try:
            workspace.write_json_atomic(_cache_file(run), {
                "key": key, "template": np.round(template, 3).tolist(), "from": how,
                "order": "left eye, right eye, nose, left mouth corner, right mouth corner (x, y)"})
        except OSError:
            pass  # a read-only run folder: compute again next time
    return template, how
