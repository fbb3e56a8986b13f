"""Training: the config, the data stream, the single training loop, checkpoints, device choice, benchmark.

    from pairlab.train import TrainConfig, PRESETS, train, train_command
"""
from .config import PRESETS, TrainConfig, load_preset, save_preset
from .device import pick_device
from .loop import read_status, train, train_command

__all__ = ["PRESETS", "TrainConfig", "load_preset", "save_preset", "pick_device", "read_status", "train",
           "train_command"]
