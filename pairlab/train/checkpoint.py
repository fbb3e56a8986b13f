"""Checkpoints: atomic writes, every RNG state, and finding the last good one after a crash.

A checkpoint holds everything that shapes the rest of a run (weights, optimizers, lr schedulers, image pools,
RNG states, the position in the data order), so a resumed run continues exactly where the saved one was.
It is stored with plain types only, so it loads with ``torch.load(weights_only=True)``: opening a checkpoint
someone dropped into the workspace never runs pickled code.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .run import LATEST, PERIODIC_GLOB, Run

FORMAT = "pairlab-checkpoint-1"
ITER_RE = re.compile(r"iter_(\d+)\.pt$")


class CheckpointError(UserError):
    """A checkpoint file that cannot be used; the message is one sentence."""


# ----- RNG state --------------------------------------------------------------------------------------
def rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----- atomic files -----------------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(obj, path) -> None:
    """torch.save to a temporary sibling, fsync, then rename over ``path``: a crash leaves the old file whole."""
    from ..workspace import atomic_file

    path = Path(path)
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
    _fsync_dir(path.parent)


def copy_atomic(src, dst) -> None:
    from ..workspace import atomic_file

    src, dst = Path(src), Path(dst)
    with atomic_file(dst) as tmp, open(src, "rb") as fin, open(tmp, "wb") as fout:
        while chunk := fin.read(16 * 1024 * 1024):
            fout.write(chunk)
    _fsync_dir(dst.parent)


# ----- reading ----------------------------------------------------------------------------------------
def load_checkpoint(path) -> dict:
    """Load a pairlab checkpoint onto the CPU, or raise CheckpointError with one sentence."""
    path = Path(path)
    if path.is_dir():  # a run folder or its checkpoints folder
        path = Run(path).latest_path if Run(path).checkpoints_dir.is_dir() else path / LATEST
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes, unpickling refusal: all mean "unusable"
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"Checkpoint {path.name} is unreadable ({reason}).")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a pairlab checkpoint.")
    return state


def periodic_checkpoints(folder) -> list[tuple[int, Path]]:
    """(iteration, path) of every iter_XXXXXX.pt, newest first."""
    found = []
    for p in Path(folder).glob(PERIODIC_GLOB):
        m = ITER_RE.search(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found, reverse=True)


def load_for_resume(folder) -> tuple[dict | None, Path | None, str]:
    """The newest readable checkpoint: latest.pt, else the periodic ones from newest to oldest.

    Returns (state, path, note); note is one sentence when a file had to be skipped. (None, None, "") means
    there is no checkpoint at all; if every one is unreadable that is a CheckpointError.
    """
    folder = Path(folder)
    candidates = ([folder / LATEST] if (folder / LATEST).exists() else [])
    candidates += [p for _, p in periodic_checkpoints(folder)]
    if not candidates:
        return None, None, ""
    failures = []
    for path in candidates:
        try:
            state = load_checkpoint(path)
        except CheckpointError as exc:
            failures.append(str(exc).rstrip("."))
            continue
        if state.get("inference_only"):
            raise CheckpointError(f"{path.name} holds only a generator for inference (a shipped demo checkpoint), so "
                                  "training cannot resume from it; start a new run with init_from set to it instead.")
        note = f"{failures[0]}; resumed from {path.name} instead." if failures else ""
        return state, path, note
    raise CheckpointError(f"No readable checkpoint in {folder} ({failures[0]}); delete that folder to start over.")


def prune(folder, keep_last: int, keep_every: int) -> None:
    """Delete old periodic checkpoints, keeping the newest ``keep_last`` and multiples of ``keep_every``."""
    for rank, (it, path) in enumerate(periodic_checkpoints(folder)):
        if rank < keep_last or (keep_every and it % keep_every == 0):
            continue
        path.unlink(missing_ok=True)


def generator_of(model, direction: str) -> str:
    """The network that translates ``direction``, from the kind's spec (pix2pix: G; CycleGAN and hybrid: G_A / G_B)."""
    return model.spec.generator(direction)


def load_model(path, device: str = "auto"):
    """A trained model ready for ``model.translate(x, direction)``; returns (model, info).

    ``path`` is a checkpoint file or a run folder (its latest.pt). info holds the iteration, epoch and config.
    An inference-only checkpoint (``inference_only``: the shipped demo's, generators only) loads the networks it
    holds and leaves the others as initialised; info["nets"] lists what was loaded.
    """
    from ..models import MODELS
    from .config import TrainConfig
    from .device import pick_device

    state = load_checkpoint(path)
    cfg = TrainConfig.from_dict(state["config"])
    with torch.random.fork_rng(devices=[]):  # building the networks must not disturb the caller's RNG
        model = MODELS[cfg.model](cfg, pick_device(device))
    saved = state["model_state"]["nets"]
    loaded = []
    for name, net in model.nets.items():
        if name not in saved and state.get("inference_only"):
            continue
        if name not in saved:
            raise CheckpointError(f"{Path(path).name} has no weights for the {cfg.model} network {name}.")
        net.load_state_dict(saved[name])  # copies (and upcasts float16) into the model's own tensors
        loaded.append(name)
        net.requires_grad_(False)
    if state.get("inference_only"):  # translate only where the generator was shipped
        model.directions = tuple(d for d in model.directions if generator_of(model, d) in loaded)
    return model, {"iteration": state["iteration"], "epoch": state["epoch"], "config": cfg, "nets": loaded,
                   "inference_only": bool(state.get("inference_only"))}
