"""What to train, assembled and checked once, for the queue and the foreground command alike (torch-free).

    job = prepare_job("my-comp", "cyclegan", "cpu-demo-64", "max_iters=300", seed=1)
    targets, seeds = launch_plan(compositions, seeds_text, name)    # the one run / sweep rule

The config is the preset, then the model, then the "key=value" overrides, then the seed; then one set of checks,
each a one-sentence ``UserError``: the model is known and not changed by an override, the composition opens, a
model that needs pairs (its spec says so) gets a composition with pairs, ``init_from`` is a file under an allowed
folder, and the requested device exists here. Nothing is written.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .. import workspace
from ..errors import UserError


# ----- overrides and seeds --------------------------------------------------------------------------------
def parse_overrides(text) -> list[str]:
    """``"lr=1e-4, max_iters=300"`` (commas or new lines between pairs) -> ["lr=1e-4", "max_iters=300"].

    Lists and dicts pass through as "key=value" strings. A piece without '=' is a one-sentence UserError.
    """
    if text is None:
        return []
    if isinstance(text, dict):
        return [f"{k}={v}" for k, v in text.items()]
    if isinstance(text, (list, tuple)):
        items = [str(t) for t in text]
    else:
        # Split at commas / new lines followed by "key=" so that values may contain commas.
        items = re.split(r"[,;\n]\s*(?=[A-Za-z_][A-Za-z0-9_]*\s*=)", str(text))
    out = []
    for item in items:
        item = item.strip().strip(",;").strip()
        if not item:
            continue
        if "=" not in item:
            raise UserError(f"Overrides are written key=value, separated by commas; got {item!r}.")
        key, value = item.split("=", 1)
        out.append(f"{key.strip()}={value.strip()}")
    return out


MAX_SEED = 2**31 - 1


def parse_seeds(text) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` or ``[0, 1]`` -> a list of distinct seeds in the given order.

    ``None`` (a caller that gives none) is seed 0; a typed empty text, a backwards range (``5-2``), a negative or
    too large seed, or more than 1000 seeds are refused with one sentence."""
    if text is None:
        return [0]
    if isinstance(text, str) and not text.strip():
        raise UserError("Please give at least one seed, e.g. 0, or 0,1,2, or 0-4.")
    if isinstance(text, bool):
        raise UserError(f"Seeds are whole numbers, got {text!r}.")
    if isinstance(text, int):
        text = [text]
    if isinstance(text, (list, tuple)):
        parts = [str(t) for t in text]
    else:
        parts = [p for p in re.split(r"[,\s]+", str(text).strip()) if p]
    seeds = []
    for part in parts:
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        try:
            if m:
                lo, hi = int(m[1]), int(m[2])
                if hi < lo:
                    raise UserError(f"The seed range {part} runs backwards; write it low-high, e.g. {hi}-{lo}.")
                if hi - lo >= 1000:
                    raise UserError(f"The seed range {part} holds {hi - lo + 1} seeds; queue at most 1000 at once.")
                values = list(range(lo, hi + 1))
            else:
                values = [int(part)]
        except ValueError:
            raise UserError(f"Seeds are whole numbers separated by commas (e.g. 0,1,2 or 0-4); got {part!r}.")
        for v in values:
            if v < 0:
                raise UserError(f"Seeds must not be negative, got {v}.")
            if v > MAX_SEED:
                raise UserError(f"Seeds must be at most {MAX_SEED}, got {v}.")
            if v not in seeds:
                seeds.append(v)
    if len(seeds) > 1000:
        raise UserError(f"That is {len(seeds)} seeds; queue at most 1000 at once.")
    return seeds


def launch_plan(compositions, seeds, name=None) -> tuple[list[str], list[int]]:
    """The one rule for "a run or a sweep": the compositions (one or several) and the seeds, and a run name only
    for a single run. Returns (compositions, seeds); a name with several runs is one sentence."""
    if isinstance(compositions, (str, os.PathLike)):
        compositions = [compositions]
    targets = [str(c) for c in (compositions or []) if str(c).strip()]
    if not targets:
        raise UserError("Choose a composition first.")
    seed_list = parse_seeds(seeds)
    if (name or "").strip() and (len(targets) > 1 or len(seed_list) > 1):
        raise UserError("A run name names a single run; leave it out to queue a sweep.")
    return targets, seed_list


# ----- compositions and run ids ---------------------------------------------------------------------------
def resolve_composition(composition) -> Path:
    """A composition given by name (under the workspace's compositions/) or by path (under an allowed root)."""
    text = str(composition or "").strip()
    if not text:
        raise UserError("Choose a composition first.")
    named = workspace.sub("compositions") / workspace.safe_name(text)
    if "/" not in text and os.sep not in text and named.name == text:
        if not named.is_dir():
            raise UserError(f"There is no composition named '{text}'.")
        return named.resolve()
    return workspace.check_allowed(text)


def run_id(composition, cfg, preset: str) -> str:
    """<composition>-<model>-<preset>-s<seed>-<hash of composition path and resolved config>."""
    digest = hashlib.sha1(f"{Path(composition).resolve()}\n{cfg.to_json()}".encode()).hexdigest()[:6]
    return workspace.safe_name(f"{Path(composition).name}-{cfg.model}-{preset}-s{cfg.seed}-{digest}")


# ----- the one config assembly ----------------------------------------------------------------------------
def assemble_config(model: str, preset: str, overrides=None, seed: int | None = None, presets_dir=None):
    """preset -> model -> overrides -> seed, resolved; the model must be known and not changed by an override."""
    from ..models.spec import get_spec
    from .config import load_preset

    get_spec(model)  # an unknown kind is one sentence
    directory = workspace.home() / "presets" if presets_dir is None else presets_dir
    cfg = load_preset(preset or "", directory).with_overrides({"model": model})
    cfg = cfg.with_overrides(parse_overrides(overrides))
    if seed is not None:
        cfg = cfg.with_overrides({"seed": int(seed)})
    cfg = cfg.resolved()
    if cfg.model != model:
        raise UserError("Choose the model with the model setting, not with an override.")
    return cfg


def prepare_job(composition, model: str, preset: str, overrides=None, seed: int | None = None,
                name: str | None = None, presets_dir=None, queued: bool = True, resolved: bool = False) -> dict:
    """Validate everything and return the job (nothing is written); bad input is a one-sentence UserError.

    The job: id (the name, or ``run_id``), composition (path) and its name, model, preset, overrides, seed, the
    resolved config (for a ``queued`` job a ``cuda:N`` device becomes ``cuda``: its slot pins the GPU; a foreground
    run keeps it), the device request, n_paired, and whether the id was named."""
    from ..data.composition import Composition
    from ..models.spec import MODEL_NAMES, get_spec
    from .device import pick_device

    comp_path = Path(composition) if resolved else resolve_composition(composition)
    cfg = assemble_config(model, preset, overrides, seed, presets_dir)
    pick_device(cfg.device)  # an unavailable device is refused now, not in the worker
    comp = Composition.open(comp_path)
    n_paired = comp.n_paired
    if get_spec(model).needs_pairs and not n_paired:
        unpaired = " or ".join(k for k in MODEL_NAMES if not get_spec(k).needs_pairs)
        raise UserError(f"{model} needs explicit pairs, but composition {comp_path.name} has none; "
                        f"choose {unpaired}, or build an 'explicit' composition.")
    if cfg.init_from and not workspace.check_allowed(cfg.init_from).is_file():
        raise UserError(f"init_from {cfg.init_from} is not a file.")
    request = cfg.device
    if queued and re.fullmatch(r"cuda:(\d+)", request):
        cfg = cfg.with_overrides({"device": "cuda"})
    return {"id": workspace.safe_name(name) if name else run_id(comp_path, cfg, preset),
            "composition": str(comp_path), "composition_name": comp_path.name, "model": model,
            "preset": preset, "overrides": parse_overrides(overrides), "seed": cfg.seed,
            "config": cfg.to_dict(), "device_request": request, "n_paired": n_paired, "named": bool(name)}
