"""Benchmarks: scripts that print figures. Performance goals live here, never in timed tests.

``python -m pairlab bench data``: SynthFaces rendering and pseudo-eyeglasses / pseudo-smile throughput,
on one core (the process pins itself to one CPU and one torch thread), medians of repeats.
``python -m pairlab bench train``: training-step figures from ``pairlab.train.bench.bench_train()``.
``python -m pairlab bench sweep``: a small-run sweep's throughput per core, arrangement by arrangement
(``pairlab.train.bench.bench_sweep()``).
``python -m pairlab bench eval``: evaluating 500 test images at 64 and 128, cold and cached (``pairlab.eval.bench``).
"""
from __future__ import annotations

import os
import tempfile
import time


def _pin_one_core() -> str:
    """Pin to one CPU with one BLAS / torch thread; call before numpy and torch are imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"
    finally:
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass


def bench_data(size: int = 128, n: int = 300) -> dict:
    core = _pin_one_core()
    from .data import synthesizers, synthfaces

    out = {"size": size, "core": core}
    out["synthfaces"] = synthfaces.bench(size=size, n=n)
    out["synthesizers_images_per_s"] = synthesizers.bench(size=size, n=max(n, 500))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        count = max(200, n)
        synthfaces.generate(os.path.join(tmp, "sf"), count=count, size=size, seed=0)
        dt = time.perf_counter() - t0
        out["generate_dataset"] = {"images": count, "seconds": round(dt, 3), "images_per_s": round(count / dt, 1),
                                   "note": "3 renders per image (base + 2 ground-truth toggles) + JPEG writes + list files"}
    return out


def _print_tree(data, indent: str = "") -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_tree(value, indent + "  ")
        elif isinstance(value, float):
            print(f"{indent}{key}: {value:.4g}")
        else:
            print(f"{indent}{key}: {value}")


def votes(participants: int, votes: int) -> int:
    """``study bench``: the vote server's load figures for this many participants x votes."""
    from .study.bench import bench_votes

    bench_votes(participants=participants, votes=votes)
    return 0


def run(what: str, args) -> int:
    """Print the figures of one benchmark (``python -m pairlab bench WHAT``)."""
    if what == "infer":  # the demo's latency figures
        from .demo.bench import bench_infer, format_report

        print(format_report(bench_infer()))
        return 0
    if what == "features":  # the feature-space figure at --points points
        from .eval.feature_bench import bench_features

        for key, value in bench_features(args.points).items():
            print(f"{key}: {value}")
        return 0
    if what == "data":
        result = bench_data(size=args.size, n=args.n)
    elif what == "train":
        from .train import bench as train_bench

        result = train_bench.bench_train()
        if hasattr(train_bench, "format_report"):
            print(train_bench.format_report(result))
            return 0
    elif what == "sweep":
        from .train import bench as train_bench

        print(train_bench.format_sweep(train_bench.bench_sweep()))
        return 0
    elif what == "eval":
        from .eval.bench import bench_eval

        result = bench_eval()
    elif what == "votes":
        from .study.bench import bench_votes_models

        result = bench_votes_models(quiet=True)
    else:  # argparse restricts the choices
        raise ValueError(what)
    _print_tree(result)
    return 0
