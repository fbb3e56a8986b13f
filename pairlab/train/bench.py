"""How fast one training step is here, and how close it comes to the machine's own fp32 matmul peak.

    python -m pairlab bench train          # the CLI: prints format_report(bench_train())
    python -m pairlab.train.bench          # the same, without the CLI

For each case (``cpu-demo-64``, and the vanilla CycleGAN of ``paper-128`` at 64x64 and 128x128) on the CPU, and
on CUDA when there is a GPU, it reports:

  s_per_iter      median seconds of one full optimisation step (both generators, both discriminators, Adam),
                  after warm-up, on random images already on the device (the data path is not timed)
  its_per_s       1 / s_per_iter
  gflop_per_iter  FLOPs of one step counted by ``torch.utils.flop_counter.FlopCounterMode`` (forward and backward
                  of every network; convolutions and matmuls, the work that counts)
  gflops          gflop_per_iter / s_per_iter
  fraction_of_peak  gflops / the fp32 matmul peak measured in this run (median of several 2048x2048 (CPU) or
                  8192x8192 (CUDA) fp32 matmuls, same thread count), taken as the highest of the peaks measured
                  before and after each case, so contention from other processes lowers the fraction, never
                  raises it
  peak_memory_mb  CPU: the peak resident set (``ru_maxrss``) of the process that ran the case (each case runs in
                  a fresh process by default, so this is the case's own, the ~0.5 GB of importing torch included);
                  CUDA: ``torch.cuda.max_memory_allocated`` during the case
  load_avg        the 1-minute load average after the case (above the thread count means other work competed)

    python -m pairlab bench sweep          # prints format_sweep(bench_sweep())

Sweep throughput (``bench_sweep``): many small runs of one configuration (the vanilla CycleGAN of ``paper-128``
at 64x64, load 72, ResNet-9, batch 1), each arrangement timed in fresh processes started together, one after
the other in one bench run: (a) one run with all cores' threads (2 here), (b) one 1-thread run per core side by
side, (c) a 3-seed sweep as the queue runs it (one 1-thread process per seed, more processes than cores when
there are fewer cores than seeds) and as batched seeds (``pairlab.train.multiseed``: k seeds as one grouped
computation in one process; one 3-seed process with all threads, and the seeds split over one 1-thread process
per core). The processes of an arrangement warm up, wait for each other, time ``iters`` steps each and keep
stepping until all have timed theirs, so every timed step ran with all of them busy. seed-it/s sums the
processes' seeds / median s per step; per core divides by the cores in use; the ratio is against (a).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..models import MODELS
from .config import PRESETS, TrainConfig
from .device import describe, pick_device

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
#: Matrix size of the matmul-peak measurement per device type.
PEAK_N = {"cpu": 2048, "cuda": 8192}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, n: int | None = None, repeats: int = 7, dtype=torch.float32) -> float:
    """Matmul GFLOP/s (fp32 unless told): the median of ``repeats`` n x n products after one warm-up, with the
    current threads; TF32 is off while it runs, so the fp32 figure is true fp32."""
    n = n or PEAK_N.get(device.type, 2048)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    c = torch.empty(n, n, device=device, dtype=dtype)
    previous_tf32 = torch.backends.cuda.matmul.allow_tf32 if device.type == "cuda" else None
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 peak, not TF32's
    try:
        torch.mm(a, b, out=c)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            torch.mm(a, b, out=c)
            _sync(device)
            times.append(time.perf_counter() - start)
    finally:
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = previous_tf32
    return 2 * n**3 / statistics.median(times) / 1e9


def _random_batch(cfg: TrainConfig, device: torch.device) -> dict:
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    shape = (cfg.batch_size, 3, cfg.image_size, cfg.image_size)
    return {"A": (torch.rand(shape, generator=gen) * 2 - 1).to(device),
            "B": (torch.rand(shape, generator=gen) * 2 - 1).to(device),
            "paired": torch.ones(cfg.batch_size, device=device), "pair": None}


def count_step_flops(model, batch: dict) -> int:
    """FLOPs of one optimisation step of ``model`` on ``batch`` (the step is really taken)."""
    with FlopCounterMode(display=False) as counter:
        model.train_step(batch)
        model.step_schedule()
    return counter.get_total_flops()


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if platform.system() == "Darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def time_step(cfg: TrainConfig, device: torch.device, warmup: int = 2, iters: int = 5) -> dict:
    """Figures of one training step of ``cfg`` on ``device``: seconds (median after warm-up) and FLOPs."""
    cfg = cfg.resolved()
    torch.manual_seed(cfg.seed)
    previous_bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # as a non-deterministic training run on CUDA
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        model = MODELS[cfg.model](cfg, device)
        model.setup_schedule(warmup + iters + 1)
        batch = _random_batch(cfg, device)
        for _ in range(warmup):
            model.train_step(batch)
            model.step_schedule()
        flops = count_step_flops(model, batch)
        times = []
        for _ in range(iters):
            _sync(device)
            start = time.perf_counter()
            model.train_step(batch)
            model.step_schedule()
            _sync(device)
            times.append(time.perf_counter() - start)
    finally:
        torch.backends.cudnn.benchmark = previous_bench
    seconds = statistics.median(times)
    memory = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else _peak_rss_mb()
    return {"s_per_iter": seconds, "its_per_s": 1.0 / seconds, "gflop_per_iter": flops / 1e9,
            "gflops": flops / seconds / 1e9, "peak_memory_mb": memory, "times": times}


def time_step_isolated(cfg: TrainConfig, device: torch.device, warmup: int = 2, iters: int = 5) -> dict:
    """``time_step`` in a fresh Python process with this process's torch thread count: every case starts from
    the same allocator state (a second big model in one process ran ~5% slower), and the CPU peak RSS is the
    case's own (plus the ~0.5 GB of importing torch)."""
    cmd = [sys.executable, "-m", "pairlab.train.bench", "--case", cfg.to_json(), "--device", str(device),
           "--warmup", str(warmup), "--iters", str(iters), "--threads", str(torch.get_num_threads())]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"benchmark case failed ({proc.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1])


def cases(sizes=(64, 128)) -> dict[str, TrainConfig]:
    """The benchmarked configs: cpu-demo-64, then the vanilla CycleGAN (paper-128 settings) at each size."""
    demo = PRESETS["cpu-demo-64"]
    out = {f"cpu-demo-64@{demo.image_size}": demo}
    for size in sizes:
        out[f"cyclegan-paper@{size}"] = PRESETS["paper-128"].with_overrides({"image_size": size, "load_size": 0})
    return out


def bench_train(sizes=(64, 128), device: str = "auto", warmup: int = 2, iters: int = 5,
                configs: dict[str, TrainConfig] | None = None, peak_n: int | None = None,
                isolate: bool = True) -> dict:
    """Benchmark the training step; returns a dict (see the module docstring; ``format_report`` prints it).

    device "auto" runs on the CPU and, when there is a GPU, on CUDA too; "cpu" or "cuda[:N]" run there only.
    ``configs`` (name -> TrainConfig) replaces the default cases; ``peak_n`` the matmul size (tests);
    ``isolate`` times each case in a fresh process (``time_step_isolated``), else in this one.
    """
    devices = [torch.device("cpu")]
    if (device or "auto") == "auto":
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
    else:
        devices = [pick_device(device)]
    configs = configs or cases(sizes)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": _cpu_name(),
              "warmup": warmup, "iters": iters, "isolated": isolate, "devices": {}}
    timer = time_step_isolated if isolate else time_step
    for dev in devices:
        n = peak_n or PEAK_N.get(dev.type, 2048)
        peaks = [matmul_peak(dev, n)]
        entry = {"device": describe(dev), "matmul_n": n, "cases": {}}
        for name, cfg in configs.items():
            figures = timer(cfg.with_overrides({"device": str(dev)}), dev, warmup, iters)
            after = matmul_peak(dev, n)
            peak = max(peaks[-1], after)
            peaks.append(after)
            figures.update(fraction_of_peak=figures["gflops"] / peak, peak_gflops=peak,
                           load_avg=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
            entry["cases"][name] = figures
        entry["matmul_peak_gflops"] = max(peaks)
        entry["matmul_peaks_gflops"] = peaks
        if dev.type == "cuda":  # the steps run under bf16 autocast: the bf16 peak is the other yardstick
            entry["matmul_peak_bf16_gflops"] = matmul_peak(dev, n, dtype=torch.bfloat16)
        result["devices"][dev.type] = entry
    return result


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def format_report(result: dict) -> str:
    """A plain-text table of ``bench_train``'s result."""
    lines = [f"training step benchmark  (torch {result['torch']}, {result['threads']} CPU threads, {result['cpu']}; "
             f"median of {result['iters']} steps after {result['warmup']} warm-up"
             f"{', each case in a fresh process' if result.get('isolated') else ''})"]
    for entry in result["devices"].values():
        peaks = ", ".join(f"{p:.0f}" for p in entry["matmul_peaks_gflops"])
        lines.append("")
        bf16 = entry.get("matmul_peak_bf16_gflops")
        lines.append(f"{entry['device']}: fp32 matmul peak {entry['matmul_peak_gflops']:.0f} GFLOP/s "
                     f"({entry['matmul_n']}x{entry['matmul_n']}; measured {peaks})"
                     + (f"; bf16 matmul peak {bf16:.0f} GFLOP/s (steps run under bf16 autocast, so 'of peak' "
                        f"against fp32 can pass 100%)" if bf16 else ""))
        mem = "peak RSS MB" if entry["device"].lower().startswith("cpu") else "max alloc MB"
        lines.append(f"  {'case':<22}{'s/iter':>9}{'iter/s':>9}{'GFLOP/it':>10}{'GFLOP/s':>9}{'of peak':>9}"
                     f"{mem:>14}{'load':>6}")
        for name, c in entry["cases"].items():
            load = f"{c['load_avg']:.1f}" if c.get("load_avg") is not None else "-"
            lines.append(f"  {name:<22}{c['s_per_iter']:>9.3f}{c['its_per_s']:>9.2f}{c['gflop_per_iter']:>10.1f}"
                         f"{c['gflops']:>9.1f}{100 * c['fraction_of_peak']:>8.1f}%"
                         f"{c['peak_memory_mb']:>14.0f}{load:>6}")
    loads = [c.get("load_avg") or 0 for e in result["devices"].values() for c in e["cases"].values()]
    if loads and max(loads) > result["threads"] + 0.5:
        lines.append("")
        lines.append(f"warning: the load average reached {max(loads):.1f} on {result['threads']} threads: other "
                     "processes competed for the CPU, so these figures are low; run again on a quiet machine.")
    lines.append("")
    lines.append("GFLOP/it: FlopCounterMode over one full step (forward + backward of all generators and "
                 "discriminators); of peak: against the highest matmul peak measured next to the case. "
                 "Peak RSS is the high-water mark of the process that ran the case (importing torch alone is ~0.5 GB).")
    return "\n".join(lines)


# ----- sweep throughput ---------------------------------------------------------------------------------
def sweep_config() -> TrainConfig:
    """The vanilla CycleGAN of a sweep: paper-128 at 64x64 (load 72), ResNet-9, batch 1, on the CPU."""
    return PRESETS["paper-128"].with_overrides({"image_size": 64, "load_size": 72, "device": "cpu"})


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def sweep_child(spec: dict) -> dict:
    """One process of a sweep arrangement: ``spec["seeds"]`` seeds (batched when more than one) with
    ``spec["threads"]`` threads; warm up, meet the others at the barrier, time ``iters`` steps, keep stepping
    until every process has timed its steps."""
    torch.set_num_threads(spec["threads"])
    cfg = TrainConfig.from_json(json.dumps(spec["config"])).resolved()
    device = torch.device("cpu")
    seeds = spec["seeds"]
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        m = MODELS[cfg.model](cfg.with_overrides({"seed": seed}), device)
        m.setup_schedule(10**6)
        models.append(m)
    batches = [_random_batch(cfg.with_overrides({"seed": seed}), device) for seed in seeds]
    if len(models) > 1:
        from .multiseed import SeedGroup

        group = SeedGroup(models)
        step = lambda: (group.train_step(batches), group.step_schedule())
    else:
        step = lambda: (models[0].train_step(batches[0]), models[0].step_schedule())
    folder, index, n = Path(spec["barrier"]), spec["index"], spec["processes"]
    for _ in range(spec["warmup"]):
        step()
    (folder / f"ready-{index}").touch()
    while len(list(folder.glob("ready-*"))) < n:
        time.sleep(0.01)
    times = []
    for _ in range(spec["iters"]):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    (folder / f"done-{index}").touch()
    while len(list(folder.glob("done-*"))) < n:  # keep the others company until they have timed theirs
        step()
    return {"seeds": len(seeds), "threads": spec["threads"], "s_per_iter": statistics.median(times),
            "times": times, "peak_memory_mb": _peak_rss_mb()}


def time_arrangement(cfg: TrainConfig, processes: list[tuple[int, int]], warmup: int, iters: int) -> dict:
    """Processes started together, each (threads, seeds); returns their figures and the totals."""
    import tempfile

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="pairlab-sweep-") as barrier:
        procs = []
        first_seed = 0
        for index, (threads, n_seeds) in enumerate(processes):
            spec = {"config": cfg.to_dict(), "seeds": list(range(first_seed, first_seed + n_seeds)),
                    "threads": threads, "warmup": warmup, "iters": iters, "barrier": barrier, "index": index,
                    "processes": len(processes)}
            first_seed += n_seeds
            procs.append(subprocess.Popen([sys.executable, "-m", "pairlab.train.bench", "--sweep-child",
                                           json.dumps(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=env))
        figures = []
        for proc in procs:
            out, err = proc.communicate()
            lines = out.strip().splitlines()
            if proc.returncode != 0 or not lines:
                tail = (err or out).strip().splitlines()[-3:]
                raise RuntimeError(f"sweep process failed ({proc.returncode}): {' | '.join(tail)}")
            figures.append(json.loads(lines[-1]))
    seed_its = sum(f["seeds"] / f["s_per_iter"] for f in figures)
    cores = min(_cores(), sum(t for t, _ in processes))
    return {"processes": figures, "seeds": sum(n for _, n in processes), "cores": cores,
            "seed_its_per_s": seed_its, "per_core": seed_its / cores,
            "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def sweep_arrangements(cores: int | None = None, seeds: int = 3) -> dict[str, list[tuple[int, int]]]:
    """name -> processes (threads, seeds) of the benchmarked arrangements on ``cores`` cores."""
    cores = cores or _cores()
    split = [seeds // cores + (1 if i < seeds % cores else 0) for i in range(cores)]
    return {
        f"(a) 1 run x {cores} threads": [(cores, 1)],
        f"(b) {cores} runs x 1 thread": [(1, 1)] * cores,
        f"(c) {seeds} seeds: {seeds} runs x 1 thread": [(1, 1)] * seeds,
        f"(c) {seeds} seeds batched, 1 process x {cores} threads": [(cores, seeds)],
        f"(c) {seeds} seeds batched {'+'.join(map(str, (s for s in split if s)))} over {sum(1 for s in split if s)} "
        f"processes x 1 thread": [(1, s) for s in split if s],
    }


def bench_sweep(warmup: int = 2, iters: int = 6, seeds: int = 3, cfg: TrainConfig | None = None,
                arrangements: dict | None = None) -> dict:
    """Sweep throughput of each arrangement (see the module docstring; ``format_sweep`` prints it)."""
    cfg = cfg or sweep_config()
    arrangements = arrangements or sweep_arrangements(seeds=seeds)
    result = {"torch": torch.__version__, "cpu": _cpu_name(), "cores": _cores(), "warmup": warmup, "iters": iters,
              "config": "paper-128 vanilla CycleGAN at %d (load %d), ngf %d, %d blocks, batch %d" % (
                  cfg.image_size, cfg.load_size, cfg.ngf, cfg.n_blocks, cfg.batch_size), "cases": {}}
    for name, processes in arrangements.items():
        result["cases"][name] = time_arrangement(cfg, processes, warmup, iters)
    base = next(iter(result["cases"].values()))
    for case in result["cases"].values():
        case["ratio"] = case["per_core"] / base["per_core"]
    return result


def format_sweep(result: dict) -> str:
    lines = [f"sweep throughput  (torch {result['torch']}, {result['cores']} cores, {result['cpu']}; "
             f"{result['config']}; median of {result['iters']} steps after {result['warmup']} warm-up, "
             f"processes of a case started together, each case in fresh processes)", "",
             f"  {'case':<52}{'s/step per process':>22}{'seed-it/s':>11}{'per core':>10}{'vs (a)':>8}{'RSS MB':>8}"
             f"{'load':>6}"]
    for name, c in result["cases"].items():
        steps = ", ".join(f"{p['s_per_iter']:.2f}" for p in c["processes"])
        rss = max(p["peak_memory_mb"] for p in c["processes"])
        load = f"{c['load_avg']:.1f}" if c.get("load_avg") is not None else "-"
        lines.append(f"  {name:<52}{steps:>22}{c['seed_its_per_s']:>11.3f}{c['per_core']:>10.3f}"
                     f"{c['ratio']:>7.2f}x{rss:>8.0f}{load:>6}")
    loads = [c.get("load_avg") or 0 for c in result["cases"].values()]
    lines.append("")
    lines.append("seed-it/s: iterations per second summed over the sweep's seeds; per core: over the cores in use; "
                 "vs (a): per core against one run using every core.")
    if loads and max(loads) > result["cores"] + 0.5:
        lines.append(f"warning: the load average reached {max(loads):.1f} on {result['cores']} cores: other "
                     "processes competed for the CPU, so these figures are noisy; run again on a quiet machine.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pairlab.train.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CPU, and CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    parser.add_argument("--case", help=argparse.SUPPRESS)      # internal: one case, as TrainConfig JSON
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sweep", action="store_true", help="sweep throughput instead (bench_sweep)")
    parser.add_argument("--sweep-child", help=argparse.SUPPRESS)  # internal: one process of an arrangement
    args = parser.parse_args(argv)
    if args.sweep_child:
        print(json.dumps(sweep_child(json.loads(args.sweep_child))))
        return 0
    if args.sweep:
        result = bench_sweep()
        print(format_sweep(result))
        if args.json:
            print(json.dumps(result, indent=1))
        return 0
    if args.case:  # a child of time_step_isolated: print the figures of one case as one JSON line
        if args.threads:
            torch.set_num_threads(args.threads)
        figures = time_step(TrainConfig.from_json(args.case), torch.device(args.device), args.warmup, args.iters)
        print(json.dumps(figures))
        return 0
    result = bench_train(device=args.device, warmup=args.warmup, iters=args.iters)
    print(format_report(result))
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
