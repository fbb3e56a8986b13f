"""Translating new photos with shipped or trained checkpoints: the Demo tab's and ``python -m pairlab translate``'s core.

    refs = list_checkpoints()                             # shipped demo checkpoints + finished runs of the workspace
    ref = resolve_checkpoint("cyclegan-alpha1")           # a shipped name, a run id, a run folder or a .pt file
    result = translate_image("face.jpg", [ref.key], direction="AtoB", pseudo=True)
    summary = translate_files("cyclegan-alpha1", ["a.jpg", "b.png"], "out/")

Each checkpoint brings the landmark template of its training crops (the shipped manifest's, or computed from a run's
composition: the mean source landmarks of its training images taken through the composition's crop / resize and the
model's resize, cached in the run folder as ``demo_template.json``), so every face is aligned the way that model was
trained. The time reported per checkpoint is the model's forward pass on one aligned crop (the model is warmed up
when it loads). A checkpoint that cannot be used gets one sentence; the others still translate.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import workspace
from ..errors import UserError
from ..models.spec import find_spec
from ..train.run import LATEST, Run, finished_runs, runs_root
from . import align as align_mod
from . import templates
from .shipped import shipped_checkpoints

MAX_CHECKPOINTS = 4
DIRECTIONS = ("AtoB", "BtoA")
FALLBACK_NOTE = "its training crops are unknown, so faces are aligned like SynthFaces crops"


# ============================================================================================ checkpoints
@dataclass(frozen=True)
class CheckpointRef:
    key: str                    # "shipped:<name>", "run:<id>" or "file:<path>"
    label: str                  # what the UI shows
    kind: str                   # shipped | run | file
    path: Path                  # the .pt file
    manifest: dict | None = None  # shipped: manifest.json
    run_dir: Path | None = None


def _shipped(root=None):
    try:
        return shipped_checkpoints(root)
    except OSError:
        return []


def _shipped_ref(s) -> CheckpointRef:
    return CheckpointRef(f"shipped:{s.name}", f"{s.manifest.get('title') or s.name} (shipped)", "shipped", s.path,
                         manifest=s.manifest)


def _read_json(path: Path) -> dict:
    return workspace.read_json(path) or {}


def _run_ref(run: Run) -> CheckpointRef:
    # The short display name (e.g. 'cyclegan α0.50 s0 #924167'): run ids of 65-95 characters overflow captions and
    # menus; the full id stays in the key, the download's file names and timings.json.
    return CheckpointRef(f"run:{run.id}", run.display_name(), "run", run.latest_path, run_dir=run.path)


def _holding_run(path: Path) -> Run | None:
    """The run whose checkpoints folder a checkpoint file lies in, else None."""
    run = Run(Path(path).parent.parent)
    return run if run.checkpoints_dir == Path(path).parent else None


def _runs_with_checkpoint() -> list[Run]:
    """The workspace's finished runs (state done) with a latest.pt, the newest checkpoint first."""
    runs = [run for run in finished_runs() if run.latest_checkpoint() is not None]
    return sorted(runs, key=lambda run: (-run.latest_path.stat().st_mtime, run.id))


def list_checkpoints(shipped_root=None) -> list[CheckpointRef]:
    """The shipped demo checkpoints, then the workspace's finished runs (a run installed from a shipped checkpoint
    is listed once, as the shipped one)."""
    shipped = _shipped(shipped_root)
    names = {s.name for s in shipped}
    refs = [_shipped_ref(s) for s in shipped]
    for run in _runs_with_checkpoint():
        if run.info().get("shipped") in names:
            continue
        refs.append(_run_ref(run))
    return refs


def resolve_checkpoint(spec, shipped_root=None) -> CheckpointRef:
    """A shipped name, a run id, a run folder, a shipped folder or a .pt file (or a key from list_checkpoints)."""
    if isinstance(spec, CheckpointRef):
        return spec
    text = str(spec or "").strip()
    if not text:
        raise UserError("Choose a checkpoint: a shipped demo name, a run id, a run folder or a .pt file.")
    kind, _, rest = text.partition(":")
    if kind == "shipped" and rest:
        for s in _shipped(shipped_root):
            if s.name == rest:
                return _shipped_ref(s)
        raise UserError(f"There is no shipped demo checkpoint named {rest!r}.")
    if kind == "run" and rest:
        run = Run(runs_root() / rest)
        if not run.has_config():
            raise UserError(f"There is no run {rest!r} in the workspace.")
        if run.latest_checkpoint() is None:
            raise UserError(f"Run {rest} has no checkpoint yet (no checkpoints/latest.pt).")
        return _run_ref(run)
    if kind == "file" and rest:
        text = rest
    path = Path(text).expanduser()
    if path.is_file():
        run = _holding_run(path)
        if run is not None and run.latest_path == path and run.has_config():
            return _run_ref(Run(run.path.resolve()))
        manifest = _read_json(path.parent / "manifest.json") if path.name == "model.pt" else {}
        if manifest.get("landmark_template") is not None or manifest.get("format", "").startswith("pairlab-shipped"):
            return CheckpointRef(f"file:{path.resolve()}", manifest.get("title") or path.parent.name, "shipped",
                                 path.resolve(), manifest=manifest)
        return CheckpointRef(f"file:{path.resolve()}", path.name, "file", path.resolve())
    if path.is_dir():
        if (path / "model.pt").is_file():
            return resolve_checkpoint(path / "model.pt")
        run = Run(path)
        if run.has_config():
            if run.latest_checkpoint() is None:
                raise UserError(f"Run {path.name} has no checkpoint yet (no checkpoints/latest.pt).")
            return _run_ref(Run(path.resolve()))
        raise UserError(f"{path} holds neither a model.pt nor a run (config.json + checkpoints/).")
    for s in _shipped(shipped_root):
        if s.name == text:
            return _shipped_ref(s)
    folder = runs_root() / text
    if Run(folder).has_config():
        return resolve_checkpoint(folder)
    names = ", ".join(s.name for s in _shipped(shipped_root)) or "none here"
    raise UserError(f"No checkpoint {text!r}: give a shipped demo name ({names}), a run id, a run folder or a .pt file.")


def directions_of(ref: CheckpointRef) -> tuple[str, ...]:
    """The directions a checkpoint can translate, from its manifest / config alone (no weights loaded)."""
    m = ref.manifest or {}
    if m.get("direction") in DIRECTIONS:
        return (m["direction"],)
    run = Run(ref.run_dir) if ref.run_dir is not None else _holding_run(ref.path)
    model = m.get("model") or ((run.config_dict() or {}).get("model") if run is not None else None)
    return find_spec(model).directions if find_spec(model) else DIRECTIONS  # an unknown kind: both, as before


# ============================================================================================ templates
# The templates themselves are computed in templates.py (the shipped demo's build needs them too); their names
# here are kept for the callers of this module.
RUN_TEMPLATE_FILE = templates.RUN_TEMPLATE_FILE
composition_template = templates.composition_template
run_template = templates.run_template


def template_for(ref: CheckpointRef, size: int) -> tuple[np.ndarray, str]:
    """(template in size x size pixels, note): the note is empty unless the SynthFaces fallback was used."""
    manifest = ref.manifest or {}
    run_dir = ref.run_dir
    if run_dir is not None and manifest == {}:
        shipped_name = Run(run_dir).info().get("shipped")
        for s in _shipped() if shipped_name else []:
            if s.name == shipped_name:
                manifest = s.manifest
    raw = manifest.get("landmark_template")
    if raw is not None:
        try:
            t = align_mod.check_template(raw, size)
            msize = int(manifest.get("image_size") or size)
            return t * (size / msize), ""
        except (UserError, TypeError, ValueError):
            pass
    why = "its manifest has no landmark template"
    if run_dir is None:
        held = _holding_run(ref.path)
        run_dir = held.path if held is not None and held.has_config() else None
    if run_dir is not None:
        t, why = run_template(run_dir, size)
        if t is not None:
            return t, ""
    return align_mod.synthfaces_template(size), f"{ref.label}: {FALLBACK_NOTE} ({why.rstrip('.')})."


# ============================================================================================ models
@dataclass
class DemoModel:
    ref: CheckpointRef
    model: object
    image_size: int
    kind: str                      # cyclegan | pix2pix | hybrid
    directions: tuple
    template: np.ndarray
    note: str                      # about the template (empty when the training crops are known)
    task: str | None
    domains: dict
    iteration: int
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def direction_label(self, direction: str) -> str:
        a, b = self.domains.get("A", "A"), self.domains.get("B", "B")
        return f"{a} → {b}" if direction == "AtoB" else f"{b} → {a}"


_MODELS: "OrderedDict[tuple, DemoModel]" = OrderedDict()
_MODELS_LOCK = threading.Lock()
_MAX_MODELS = 6


def _task_and_domains(ref: CheckpointRef) -> tuple[str | None, dict]:
    m = ref.manifest or {}
    if m.get("task"):
        return m["task"], dict(m.get("domains") or {})
    run = Run(ref.run_dir) if ref.run_dir is not None else _holding_run(ref.path)
    if run is not None and run.has_info():
        try:
            from ..data.compose import load_manifest
            from ..eval.outputs import run_composition

            cm = load_manifest(run_composition(run.path))
            return cm.get("task"), dict(cm.get("domains") or {})
        except UserError:
            pass
    return None, {}


def load_demo_model(spec, device: str = "auto", shipped_root=None) -> DemoModel:
    """Load (and warm up) a checkpoint for the demo; cached while the file is unchanged."""
    import torch

    from ..train.checkpoint import load_model

    ref = resolve_checkpoint(spec, shipped_root)
    try:
        st = ref.path.stat()
    except OSError:
        raise UserError(f"{ref.label}: its checkpoint file {ref.path} is missing.")
    key = (str(ref.path), st.st_mtime_ns, st.st_size, str(device))
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
    model, info = load_model(ref.path, device)
    cfg = info["config"]
    size = int(cfg.image_size)
    manifest = ref.manifest or {}
    if manifest.get("image_size") not in (None, size):
        raise UserError(f"{ref.label}: its manifest says {manifest['image_size']}x{manifest['image_size']} pixels but "
                        f"its networks were trained at {size}x{size}, so the checkpoint folder is inconsistent.")
    if manifest.get("model") not in (None, cfg.model):
        raise UserError(f"{ref.label}: its manifest says {manifest['model']} but the checkpoint holds a {cfg.model} "
                        "model, so the checkpoint folder is inconsistent.")
    directions = tuple(getattr(model, "directions", ("AtoB",)))
    if manifest.get("direction") in DIRECTIONS:
        directions = tuple(d for d in directions if d == manifest["direction"])
    template, note = template_for(ref, size)
    task, domains = _task_and_domains(ref)
    dm = DemoModel(ref=ref, model=model, image_size=size, kind=cfg.model, directions=directions, template=template,
                   note=note, task=task, domains=domains, iteration=int(info.get("iteration") or 0))
    if directions:  # warm up, so the first timed translation is not a cold one
        with torch.no_grad(), align_mod.adaptive_threads():
            model.translate(torch.zeros(1, 3, size, size, device=model.device), directions[0])
    with _MODELS_LOCK:
        _MODELS[key] = dm
        while len(_MODELS) > _MAX_MODELS:
            _MODELS.popitem(last=False)
    return dm


def translate_crop(dm: DemoModel, crop: np.ndarray, direction: str = "AtoB") -> tuple[np.ndarray, float]:
    """Translate one aligned crop; (uint8 image, milliseconds of the model's forward pass)."""
    import torch

    from ..train.data import to_tensor, to_uint8

    if direction not in DIRECTIONS:
        raise UserError(f"Direction must be AtoB or BtoA, got {direction!r}.")
    if direction not in dm.directions:
        can = " and ".join(dm.directions) or "nothing"
        raise UserError(f"{dm.ref.label} translates only {can} ({dm.direction_label(dm.directions[0]) if dm.directions else 'no generator'}), "
                        f"not {direction}.")
    crop = np.asarray(crop)
    if crop.ndim != 3 or crop.shape[:2] != (dm.image_size, dm.image_size):
        raise UserError(f"The aligned crop is {crop.shape[1] if crop.ndim > 1 else '?'}x{crop.shape[0]} pixels but "
                        f"{dm.ref.label} takes {dm.image_size}x{dm.image_size} images; align the face for this checkpoint.")
    dev = dm.model.device
    x = to_tensor(crop[..., :3])[None].to(dev)
    with dm.lock, torch.no_grad():  # pix2pix's translate restores its batch-norm buffers: one caller at a time
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        y = dm.model.translate(x, direction)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        ms = (time.perf_counter() - t0) * 1000.0
    return to_uint8(y[0].float().cpu()), ms


def pseudo_sample(task: str | None, aligned: align_mod.Aligned, seed: int = 0) -> tuple[np.ndarray, str]:
    """The synthesizer's pseudo-sample M(x) of the aligned crop (what the pseudo-pair recipes add to domain A).

    Drawn at the face's own landmarks as aligned into the crop (the template's when detection placed them far off)."""
    from ..data.synthesizers import get_synthesizer

    if not task:
        raise UserError("The chosen checkpoints' task is unknown, so there is no synthesizer for a pseudo-sample.")
    synth = get_synthesizer(task)
    lm = aligned.landmarks if aligned.residual < 0.25 * np.linalg.norm(aligned.template[1] - aligned.template[0]) \
        else aligned.template
    params = synth.sample_params(np.random.default_rng(seed), lm)
    img = synth.apply(np.ascontiguousarray(aligned.image), lm, params)
    return img, f"pseudo-sample M(x) — {synth.name}, {describe_params(params)}, seed {seed}"


def describe_params(params: dict) -> str:
    """The parameters of one pseudo-sample in a few words (the Demo caption), e.g. 'lenses 17×23, line 5, opacity
    0.31 (CelebA pixels)'; a faint draw says so, since the paper's opacity range starts at 0.1."""
    if "opacity" in params:
        text = (f"lenses {params['height']:.0f}×{params['width']:.0f}, line {params['line_width']:.0f} "
                f"(CelebA px), opacity {params['opacity']:.2f}")
        return text + (" (faint)" if params["opacity"] < 0.35 else "")
    if "template" in params:
        return f"template {params['template']}, intensity {params['intensity']:.2f}"
    return ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items()
                     if k != "synthesizer" and not isinstance(v, (list, dict)))


# ============================================================================================ one image
@dataclass
class Translation:
    key: str
    label: str
    image: np.ndarray | None
    ms: float | None
    error: str = ""
    size: int = 0
    direction: str = "AtoB"

    @property
    def caption(self) -> str:
        return f"{self.label} — {self.ms:.0f} ms" if self.image is not None else f"{self.label} — {self.error}"


@dataclass
class DemoResult:
    face: align_mod.Face
    aligned: dict[int, align_mod.Aligned]   # image size -> the crop at that size (first model's template)
    items: list[Translation]
    pseudo: list[tuple[np.ndarray, str]]
    notes: list[str]
    align_ms: float
    outlined: np.ndarray | None = None      # the input (at most OUTLINE_SIDE px) with the used face outlined

    @property
    def first_crop(self) -> np.ndarray | None:
        return next(iter(self.aligned.values())).image if self.aligned else None

    @property
    def message(self) -> str:
        ok = [t for t in self.items if t.image is not None]
        parts = [self.face.message]
        parts += [n for n in self.notes if n]
        if ok:
            parts.append(f"Translated with {len(ok)} checkpoint(s).")
        parts += [f"{t.label}: {t.error}" if not t.error.startswith(t.label) else t.error
                  for t in self.items if t.image is None]
        return " ".join(p if p.endswith(".") else p + "." for p in parts)

    def gallery(self) -> list[tuple[np.ndarray, str]]:
        """(image, caption) for the UI: the pseudo-samples, then each translation."""
        out = list(self.pseudo)
        out += [(t.image, t.caption) for t in self.items if t.image is not None]
        return out


def _unique(seq):
    seen, out = set(), []
    for x in seq:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def translate_image(image, checkpoints, direction: str = "AtoB", pseudo: bool = False, device: str = "auto",
                    name=None, seed: int = 0, shipped_root=None) -> DemoResult:
    """Detect and align the face once per model size / template, translate with each checkpoint (at most four)."""
    specs = [c for c in (checkpoints if isinstance(checkpoints, (list, tuple)) else [checkpoints]) if c]
    if not specs:
        raise UserError("Choose at least one checkpoint to translate with.")
    if len(specs) > MAX_CHECKPOINTS:
        raise UserError(f"Choose at most {MAX_CHECKPOINTS} checkpoints; {len(specs)} are selected.")
    if direction not in DIRECTIONS:
        raise UserError(f"Direction must be AtoB or BtoA, got {direction!r}.")
    rgb = align_mod.read_image(image, name=name)
    items: list[Translation | None] = [None] * len(specs)  # in the order chosen
    models: list[tuple[int, DemoModel]] = []
    for i, spec in enumerate(specs):
        try:
            models.append((i, load_demo_model(spec, device, shipped_root)))
        except UserError as exc:
            try:
                label = resolve_checkpoint(spec, shipped_root).label
            except UserError:
                label = str(spec).split(":", 1)[-1]
            items[i] = Translation(str(getattr(spec, "key", spec)), label, None, None, str(exc))
    if not models:
        raise UserError(items[0].error)
    with align_mod.adaptive_threads():
        return _translate_loaded(rgb, models, items, direction, pseudo, seed)


def _translate_loaded(rgb, models, items, direction, pseudo, seed) -> DemoResult:
    t0 = time.perf_counter()
    face = align_mod.detect_face(rgb)
    aligned_by: dict[tuple, align_mod.Aligned] = {}
    by_size: dict[int, align_mod.Aligned] = {}

    def crop_key(dm: DemoModel) -> tuple:
        return dm.image_size, tuple(np.round(dm.template, 3).ravel())

    for _, dm in models:
        if crop_key(dm) not in aligned_by:
            aligned_by[crop_key(dm)] = align_mod.align_to(rgb, face, dm.template, dm.image_size)
            by_size.setdefault(dm.image_size, aligned_by[crop_key(dm)])
    align_ms = (time.perf_counter() - t0) * 1000.0
    for i, dm in models:
        try:
            out, ms = translate_crop(dm, aligned_by[crop_key(dm)].image, direction)
            items[i] = Translation(dm.ref.key, dm.ref.label, out, ms, "", dm.image_size, direction)
        except UserError as exc:
            items[i] = Translation(dm.ref.key, dm.ref.label, None, None, str(exc), dm.image_size, direction)
    models = [dm for _, dm in models]
    pseudos = []
    notes = _unique([dm.note for dm in models] + [n for al in aligned_by.values() for n in al.notes])
    if pseudo:
        done = set()
        for dm in models:
            if (dm.task, dm.image_size) in done:
                continue
            done.add((dm.task, dm.image_size))
            try:
                al = by_size[dm.image_size]
                pseudos.append(pseudo_sample(dm.task, al, seed))
            except UserError as exc:
                notes.append(str(exc))
    return DemoResult(face=face, aligned=by_size, items=items, pseudo=pseudos, notes=notes, align_ms=align_ms,
                      outlined=outline_face(rgb, face))


OUTLINE_SIDE = 480


def outline_face(rgb: np.ndarray, face: align_mod.Face, max_side: int = OUTLINE_SIDE) -> np.ndarray:
    """The input photo (shrunk to at most ``max_side`` pixels) with the face that is used outlined: its detector box
    and its five landmarks, so with several faces one sees which was taken."""
    from PIL import ImageDraw

    img = Image.fromarray(np.asarray(rgb)[..., :3])
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    width = max(2, round(max(img.size) / 160))
    x0, y0, x1, y1 = (np.asarray(face.box, dtype=float) * scale).tolist()
    draw.rectangle([x0, y0, x1, y1], outline=(0, 230, 90), width=width)
    r = max(2, width)
    for x, y in np.asarray(face.landmarks, dtype=float) * scale:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 200, 0), outline=(0, 0, 0))
    return np.asarray(img)


# ============================================================================================ files (CLI, download)
def save_result(result: DemoResult, out_dir, stem: str = "face") -> list[dict]:
    """Write the aligned crop(s), each translation and the pseudo-samples as PNGs; one record per file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []

    def put(arr, name, **info):
        Image.fromarray(arr).save(out_dir / name)
        files.append(dict(file=name, **info))

    sizes = list(result.aligned)
    for size, al in result.aligned.items():
        put(al.image, f"{stem}_aligned.png" if len(sizes) == 1 else f"{stem}_aligned_{size}.png", kind="aligned",
            size=size, landmarks=np.round(al.landmarks, 2).tolist())
    for i, (img, caption) in enumerate(result.pseudo):
        put(img, f"{stem}_pseudo.png" if i == 0 else f"{stem}_pseudo_{i + 1}.png", kind="pseudo", caption=caption)
    used = set()
    for t in result.items:
        if t.image is None:
            continue
        short = resolve_short(t.key)
        name = f"{stem}_{short}.png"
        n = 2
        while name in used:
            name, n = f"{stem}_{short}-{n}.png", n + 1
        used.add(name)
        put(t.image, name, kind="translation", checkpoint=t.label, key=t.key, direction=t.direction, ms=round(t.ms, 2))
    return files


def resolve_short(key: str) -> str:
    kind, _, rest = key.partition(":")
    if kind == "file":
        p = Path(rest)
        return workspace.safe_name(p.parent.name if p.name in ("model.pt", LATEST) else p.stem)
    return workspace.safe_name(rest or key)


def translate_files(checkpoints, images, out_dir, direction: str = "AtoB", pseudo: bool = False,
                    device: str = "auto", shipped_root=None, echo=None) -> dict:
    """Translate image files headless: per image its aligned crop, each result and (optionally) the pseudo-sample as
    PNGs in ``out_dir``, plus ``timings.json``. A bad image is reported in one sentence and the rest go on."""
    echo = echo or (lambda line: None)
    specs = checkpoints if isinstance(checkpoints, (list, tuple)) else [checkpoints]
    images = [Path(p) for p in images]
    if not images:
        raise UserError("Give at least one image to translate.")
    # Fail early, with one sentence, on a checkpoint that cannot be used at all.
    models = [load_demo_model(s, device, shipped_root) for s in specs]
    for dm in models:
        if direction not in dm.directions:
            raise UserError(f"{dm.ref.label} translates only {' and '.join(dm.directions) or 'nothing'}, not {direction}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, stems = [], set()
    for path in images:
        stem = workspace.safe_name(path.stem)
        base, n = stem, 2
        while stem in stems:
            stem, n = f"{base}-{n}", n + 1
        stems.add(stem)
        rec = {"input": str(path)}
        try:
            res = translate_image(path, [dm.ref for dm in models], direction, pseudo, device, shipped_root=shipped_root)
            rec.update(faces=res.face.n_faces, message=res.message, align_ms=round(res.align_ms, 2),
                       files=save_result(res, out_dir, stem))
            errors = [t for t in res.items if t.image is None]
            if errors:
                rec["errors"] = {t.label: t.error for t in errors}
            times = ", ".join(f"{t.label} {t.ms:.1f} ms" for t in res.items if t.image is not None)
            echo(f"{path.name}: {res.face.message} {times}; align {res.align_ms:.1f} ms")
        except UserError as exc:
            rec["error"] = str(exc)
            echo(f"{path.name}: {exc}")
        records.append(rec)
    import torch

    summary = {
        "checkpoints": [{"key": dm.ref.key, "label": dm.ref.label, "model": dm.kind, "image_size": dm.image_size,
                         "iteration": dm.iteration, "template": np.round(dm.template, 2).tolist(),
                         "template_note": dm.note} for dm in models],
        "direction": direction, "device": str(models[0].model.device), "torch_threads": torch.get_num_threads(),
        "images": records, "ok": sum(1 for r in records if "error" not in r), "failed": sum(1 for r in records if "error" in r),
    }
    workspace.write_json_atomic(out_dir / "timings.json", summary)
    return summary


def zip_files(folder, names, zip_path) -> Path:
    """A zip of some files of a folder (the Demo tab's download)."""
    import zipfile

    zip_path = Path(zip_path)
    tmp = zip_path.with_name(f".{zip_path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in names:
            z.write(Path(folder) / name, arcname=name)
    os.replace(tmp, zip_path)
    return zip_path
