"""Training: the run folder, the config, the data stream, the single training loop, checkpoints, device choice,
benchmark.

    from pairlab.train import Run, list_runs, TrainConfig, PRESETS, train, train_command

``Run`` (``pairlab.train.run``) and the config are torch-free; the loop needs torch and is imported on first use
(``from pairlab.train import train``), so ``import pairlab.train.run`` does not pull torch in.
"""
from .config import PRESETS, TrainConfig, load_preset, save_preset
from .run import Run, finished_runs, list_runs

_LAZY = {"pick_device": ".device", "read_status": ".loop", "train": ".loop", "train_command": ".loop"}


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PRESETS", "TrainConfig", "load_preset", "save_preset", "pick_device", "read_status", "train",
           "train_command", "Run", "list_runs", "finished_runs"]
