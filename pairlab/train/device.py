"""Choosing where to train: CUDA when present, then Apple MPS, else CPU."""
from __future__ import annotations

import torch

from ..errors import UserError


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit choice that is not available is a UserError."""
    pref = (preference or "auto").strip().lower()
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if has_mps:
            return torch.device("mps")
        return torch.device("cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"Device {preference!r} was requested but no CUDA GPU is available; use device=auto or cpu.")
        dev = torch.device(pref)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"Device {preference!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s).")
        return dev
    if pref == "mps":
        if not has_mps:
            raise UserError("Device 'mps' was requested but Apple MPS is not available; use device=auto or cpu.")
        return torch.device("mps")
    raise UserError(f"Unknown device {preference!r}; use auto, cpu, cuda, cuda:N or mps.")


def describe(device: torch.device) -> str:
    """A short human description, e.g. 'cuda:0 (NVIDIA H100)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)
