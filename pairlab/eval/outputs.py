"""Test-set outputs: a run's checkpoint translates its composition's test split once; everything else reads the cache.

    workspace/cache/outputs/<sha1 of the checkpoint file>[:16]-<direction>/
        outputs.json        what was translated: checkpoint (file, sha1, iteration), run, composition, test set,
                            image size, device, seconds, and one entry per test image (name, input, output, truth)
        <stem>.png          the translated image (lossless), at the run's image size

The key is the checkpoint's content hash, so a new checkpoint (a newer latest.pt) gets its own folder and the same
checkpoint is reused by the metrics, the Compare tab, the feature-space plots, the user study and the demo. A
folder is written under a temporary name and renamed, so a failure never leaves a half-made cache. A cache whose
recorded test set no longer matches the composition (rebuilt under the same name) is made again.

Inputs and truths are read from the composition (resized like training data, bicubic, when their size differs from
the run's ``image_size``); ``OutputSet.load`` returns any of the three as uint8 arrays at the output size.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import workspace
from ..errors import BadImage, UserError
from ..models.spec import get_spec
from ..train.run import Run, open_run

DIRECTIONS = ("AtoB", "BtoA")
FORMAT = "pairlab-outputs-1"
_SHA_MEMO: dict[tuple, str] = {}


# ================================================================================ finding runs and checkpoints
def resolve_run(run) -> Path:
    """A run folder from a path or a run id under the workspace's runs/."""
    found = open_run(run)
    if not found.has_config():
        raise UserError(f"{found.id} is not a run folder (it has no config.json).")
    return found.path.resolve()


def checkpoint_path(run_dir: Path, checkpoint="latest") -> Path:
    """The checkpoint file: 'latest', an iteration number, 'iter_000200', a file name in checkpoints/ or a path."""
    return Run(run_dir).checkpoint(checkpoint)


def file_sha1(path: Path) -> str:
    """SHA-1 of a file's bytes (memoised per path, size and modification time)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        h = hashlib.sha1()
        with open(path, "rb") as fh:
            while chunk := fh.read(8 * 1024 * 1024):
                h.update(chunk)
        _SHA_MEMO[key] = h.hexdigest()
    return _SHA_MEMO[key]


def run_composition(run_dir: Path) -> Path:
    """The composition a run was trained on (run.json), or a one-sentence error when it moved or vanished."""
    run_dir = Path(run_dir)
    try:
        recorded = Path(Run(run_dir).info()["composition"])
    except (KeyError, TypeError):
        raise UserError(f"Run {run_dir.name} has no readable run.json, so its composition is unknown.")
    if recorded.is_dir():
        return recorded
    # Moved workspace: a composition of the same name in this workspace's compositions/ folder.
    here = workspace.sub("compositions") / recorded.name
    if (here / "manifest.json").exists():
        return here
    raise UserError(f"Run {run_dir.name} was trained on composition {recorded}, which no longer exists "
                    "(moved or deleted), so its test set cannot be translated.")


def run_config(run_dir: Path) -> dict:
    cfg = Run(run_dir).config_dict()
    if cfg is None:
        raise UserError(f"Run {Path(run_dir).name} has no readable config.json.")
    return cfg


# ================================================================================ the output set
@dataclass(frozen=True)
class OutputItem:
    name: str          # the test image's file name in testA/ or testB/
    input: Path
    output: Path
    truth: Path | None  # the true counterpart T(x), when the composition knows it


@dataclass
class OutputSet:
    folder: Path
    run_dir: Path
    composition: Path
    direction: str
    image_size: int
    checkpoint: dict          # {"file", "sha1", "iteration"}
    items: list[OutputItem]
    model: str = ""
    reused: bool = False      # True when the cache already held these outputs
    seconds: float = 0.0      # translation time when they were made
    _arrays: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def key(self) -> str:
        return self.folder.name

    @property
    def n_truth(self) -> int:
        return sum(1 for it in self.items if it.truth is not None)

    def rows(self) -> list[tuple[str, Path, Path, Path | None]]:
        """(test image name, input path, output path, truth path or None) per test image."""
        return [(it.name, it.input, it.output, it.truth) for it in self.items]

    def load(self, kind: str, indices=None) -> np.ndarray:
        """uint8 (N, H, W, 3) images at the output size: kind is 'input', 'output' or 'truth'.

        Truth is only for items that have one (pass their indices); arrays are memoised per kind.
        """
        if kind not in ("input", "output", "truth"):
            raise ValueError(kind)
        idx = list(range(len(self.items))) if indices is None else [int(i) for i in indices]
        cache = self._arrays.setdefault(kind, {})
        missing = [i for i in idx if i not in cache]
        for i in missing:
            path = getattr(self.items[i], kind)
            if path is None:
                raise UserError(f"Test image {self.items[i].name} has no ground truth.")
            cache[i] = load_at_size(path, self.image_size)
        if not idx:
            return np.zeros((0, self.image_size, self.image_size, 3), np.uint8)
        return np.stack([cache[i] for i in idx])

    def truth_indices(self) -> list[int]:
        return [i for i, it in enumerate(self.items) if it.truth is not None]


def load_at_size(path: Path, size: int) -> np.ndarray:
    """An image as uint8 HxWx3 at size x size (bicubic, as training data are resized)."""
    from ..data.images import load_rgb

    try:
        img = load_rgb(path)
    except BadImage as exc:
        raise UserError(str(exc))
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def _test_items(comp_root: Path, direction: str) -> list[tuple[str, Path, Path | None]]:
    """(name, input path, truth path or None) of the split a direction translates."""
    from ..data.composition import Composition

    comp = Composition.open(comp_root)
    src, dst = ("testA", "testB") if direction == "AtoB" else ("testB", "testA")
    names = comp.files[src]
    if not names:
        raise UserError(f"Composition {comp_root.name} has no {src} images to translate.")
    truths = comp.truths.get(src) or [None] * len(names)
    # A known test pair is a true counterpart too (aligned compositions and the plain layout with a manifest).
    pair_of = {}
    if direction == "AtoB":
        pair_of = {n: p for n, p in zip(comp.files["testA"], comp.pairs.get("testA") or []) if p}
    else:
        pair_of = {p: n for n, p in zip(comp.files["testA"], comp.pairs.get("testA") or []) if p}
    out = []
    for name, truth in zip(names, truths):
        path = None
        if truth:
            path = comp_root / truth
            if not path.is_file():
                raise UserError(f"Composition {comp_root.name} lists the ground truth {truth}, which is missing.")
        elif name in pair_of:
            path = comp_root / dst / pair_of[name]
        out.append((name, comp_root / src / name, path))
    return out


def _test_signature(items) -> str:
    h = hashlib.sha1()
    for name, inp, truth in items:
        h.update(f"{name}|{inp.stat().st_size}|{truth.name if truth else ''}|{truth.stat().st_size if truth else 0}\n".encode())
    return h.hexdigest()[:16]


IDENTITY_MODEL = "identity"


def identity_outputs(comp_root, direction: str = "AtoB", image_size: int | None = None) -> OutputSet:
    """The identity map's "outputs" on a composition's test split: every output is its input, unchanged.

    The same test images (and truths) a run of that composition is evaluated on, loaded at ``image_size`` (the
    runs' size; default: the first input's size) exactly as a run's inputs are, so every metric of the registry can
    score "doing nothing". Nothing is written: ``folder`` is the composition and the checkpoint is named
    "identity".
    """
    if direction not in DIRECTIONS:
        raise UserError(f"Direction must be AtoB or BtoA, got {direction!r}.")
    comp_root = Path(comp_root)
    test = _test_items(comp_root, direction)
    if image_size is None:
        from ..data.images import load_rgb

        try:
            image_size = load_rgb(test[0][1]).size[0]
        except BadImage as exc:
            raise UserError(str(exc))
    items = [OutputItem(name, inp, inp, truth) for name, inp, truth in test]
    return OutputSet(folder=comp_root, run_dir=comp_root, composition=comp_root, direction=direction,
                     image_size=int(image_size), checkpoint={"file": None, "sha1": IDENTITY_MODEL, "iteration": None},
                     items=items, model=IDENTITY_MODEL, reused=True)


def test_set_key(outputs: OutputSet) -> str:
    """A content hash of a test set as evaluated: direction, size, each image's name and the bytes of its input and
    truth files (two compositions of the same source test images share it)."""
    h = hashlib.sha1(f"{outputs.direction}|{outputs.image_size}\n".encode())
    for it in outputs.items:
        h.update(it.name.encode() + b"|")
        for path in (it.input, it.truth):
            h.update(hashlib.sha1(Path(path).read_bytes()).digest() if path is not None else b"-")
    return h.hexdigest()[:16]


def _from_json(folder: Path, meta: dict, comp_root: Path, run_dir: Path, reused: bool) -> OutputSet:
    items = [OutputItem(e["name"], comp_root / e["input"], folder / e["output"],
                        comp_root / e["truth"] if e.get("truth") else None) for e in meta["items"]]
    return OutputSet(folder=folder, run_dir=run_dir, composition=comp_root, direction=meta["direction"],
                     image_size=int(meta["image_size"]), checkpoint=meta["checkpoint"], items=items,
                     model=meta.get("model", ""), reused=reused, seconds=float(meta.get("seconds", 0.0)))


def _read_cache(folder: Path) -> dict | None:
    try:
        meta = json.loads((folder / "outputs.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT:
        return None
    if not all((folder / e["output"]).is_file() for e in meta.get("items", [])):
        return None
    return meta


def _batch_size(size: int, model: str, device) -> int:
    if get_spec(model).batch_stats_inference:  # pix2pix: one image at a time, as the reference test does
        return 1
    base = 64 if getattr(device, "type", "cpu") == "cuda" else 16
    return max(1, int(base * (64 / max(size, 1)) ** 2))


def _clean_old_temps(root: Path, age_s: float = 6 * 3600) -> None:
    """Remove temporary folders a killed process left (only old ones: another process may be writing now)."""
    now = time.time()
    for item in root.iterdir():
        if item.name.startswith(".tmp-") and item.is_dir():
            try:
                if now - item.stat().st_mtime > age_s:
                    shutil.rmtree(item, ignore_errors=True)
            except OSError:
                pass


def translate_test_set(run_dir, checkpoint="latest", direction: str = "AtoB", progress=None,
                       device: str = "auto") -> OutputSet:
    """Translate the run's test split with one checkpoint (once; later calls reuse the cache)."""
    progress = progress or (lambda f, m: None)
    if direction not in DIRECTIONS:
        raise UserError(f"Direction must be AtoB or BtoA, got {direction!r}.")
    run_dir = resolve_run(run_dir)
    ckpt_file = checkpoint_path(run_dir, checkpoint)
    cfg = run_config(run_dir)
    model_name = str(cfg.get("model", ""))
    from ..models import MODELS

    if model_name in MODELS and direction not in MODELS[model_name].directions:
        raise UserError(f"Run {run_dir.name} is a {model_name} model, which only translates "
                        f"{' and '.join(MODELS[model_name].directions)}; it cannot be evaluated {direction}.")
    comp_root = run_composition(run_dir)
    test = _test_items(comp_root, direction)
    signature = _test_signature(test)
    sha = file_sha1(ckpt_file)
    root = workspace.sub("cache") / "outputs"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{sha[:16]}-{direction}"
    meta = _read_cache(final)
    if meta is not None and meta.get("test_signature") == signature:
        progress(1.0, f"Reusing {len(meta['items'])} cached outputs")
        return _from_json(final, meta, comp_root, run_dir, reused=True)

    import torch

    from ..train.checkpoint import load_model
    from ..train.data import to_tensor, to_uint8
    from ..train.device import describe, pick_device

    progress(0.0, f"Loading {ckpt_file.name}")
    model, info = load_model(ckpt_file, device)
    if direction not in model.directions:
        raise UserError(f"Run {run_dir.name} holds only the generator for {' and '.join(model.directions)} (a shipped "
                        f"demo checkpoint), so it cannot be evaluated {direction}.")
    size = int(info["config"].image_size)
    dev = model.device
    bs = _batch_size(size, model_name, dev)
    _clean_old_temps(root)
    start = time.time()
    try:
        with workspace.atomic_folder(final, exist_ok=True) as tmp:
            entries = []
            for lo in range(0, len(test), bs):
                chunk = test[lo:lo + bs]
                x = torch.stack([to_tensor(load_at_size(inp, size)) for _, inp, _ in chunk])
                with torch.no_grad():
                    y = model.translate(x.to(dev), direction).float().cpu()
                for (name, inp, truth), out in zip(chunk, y):
                    out_name = f"{Path(name).stem}.png"
                    Image.fromarray(to_uint8(out)).save(tmp / out_name)
                    entries.append({"name": name, "input": str(inp.relative_to(comp_root)), "output": out_name,
                                    "truth": str(truth.relative_to(comp_root)) if truth else None})
                progress(min(lo + bs, len(test)) / len(test), f"Translated {min(lo + bs, len(test))}/{len(test)} test images")
            seconds = time.time() - start
            meta = {
                "format": FORMAT, "direction": direction, "image_size": size, "model": model_name,
                "checkpoint": {"file": ckpt_file.name, "sha1": sha, "iteration": int(info["iteration"])},
                "run": str(run_dir), "composition": str(comp_root), "test_signature": signature,
                "device": describe(dev), "seconds": round(seconds, 3), "created": time.time(), "items": entries,
            }
            workspace.write_json_atomic(tmp / "outputs.json", meta)
            if final.exists():  # a stale cache (another test set): set it aside, then replace
                workspace.remove_folder(final)
    except workspace.FolderTaken:  # another process finished the same outputs first: use theirs
        other = _read_cache(final)
        if other is None:
            raise UserError(f"Could not write the outputs cache {final}.")
        return _from_json(final, other, comp_root, run_dir, reused=True)
    return _from_json(final, meta, comp_root, run_dir, reused=False)
