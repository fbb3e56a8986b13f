"""How long one training iteration takes here: CycleGAN at the paper setting and at the cpu-demo-64 preset.

    python -m pairlab.train.bench            # prints a JSON dict of seconds per iteration
"""
from __future__ import annotations

import json
import statistics
import time

import torch

from ..models import MODELS
from .config import PRESETS, TrainConfig
from .device import describe, pick_device


def time_iterations(cfg: TrainConfig, device: torch.device, warmup: int = 2, iters: int = 5) -> float:
    """Median seconds of one full optimisation step on random images (after warm-up), batch cfg.batch_size."""
    cfg = cfg.resolved()
    torch.manual_seed(cfg.seed)
    model = MODELS[cfg.model](cfg, device)
    model.setup_schedule(warmup + iters)
    shape = (cfg.batch_size, 3, cfg.image_size, cfg.image_size)
    batch = {"A": torch.rand(shape) * 2 - 1, "B": torch.rand(shape) * 2 - 1,
             "paired": torch.ones(cfg.batch_size), "pair": None}
    times = []
    for i in range(warmup + iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model.optimize(batch)
        model.step_schedule()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_train(sizes=(64, 128), device: str = "auto", warmup: int = 2, iters: int = 5) -> dict:
    """Seconds per iteration of CycleGAN: the paper setting (ngf 64, 9 blocks) at each size, and cpu-demo-64.

    Returns {"device": ..., "threads": ..., "cyclegan-paper@64": s, "cyclegan-paper@128": s,
    "cpu-demo-64@64": s}; the paper setting uses batch 1 like the paper.
    """
    dev = pick_device(device)
    result = {"device": describe(dev), "threads": torch.get_num_threads()}
    for size in sizes:
        cfg = PRESETS["paper-128"].with_overrides({"image_size": size, "load_size": 0})
        result[f"cyclegan-paper@{size}"] = round(time_iterations(cfg, dev, warmup, iters), 4)
    demo = PRESETS["cpu-demo-64"]
    result[f"cpu-demo-64@{demo.image_size}"] = round(time_iterations(demo, dev, warmup, iters), 4)
    return result


if __name__ == "__main__":
    print(json.dumps(bench_train(), indent=1))
