"""``python -m pairlab bench infer``: per-image latency of the Demo tab's work on this machine's CPU.

    cpu-demo-64 generator    ResNet generator, ngf 32, 6 blocks, 64x64 (the shipped demo's size)   target < 30 ms
    vanilla generator 128    ResNet-9, ngf 64, 128x128 (paper-128)                                  target < 400 ms
    MTCNN alignment          detect + similarity warp of a 178x218 face photo (CelebA's size)       target < 50 ms

One image at a time (batch 1, as the demo translates), random weights (the time does not depend on them), under
``torch.inference_mode``, after warm-up; median and 95th percentile of the repeats, with torch's default thread
count (reported). The face photo is a SynthFaces render at 218 px cropped to 178x218, so it looks like CelebA.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

from .align import align_to, detect_face, synthfaces_template

#: Each case stops after this many seconds once it has MIN_REPEATS timings (a busy machine is slow).
BUDGET_S = 20.0
MIN_REPEATS = 10
TARGETS_MS = {"cpu_demo_64": 30.0, "vanilla_128": 400.0, "mtcnn_align": 50.0}
LABELS = {
    "cpu_demo_64": "cpu-demo-64 generator (ngf 32, 6 blocks, 64x64)",
    "vanilla_128": "vanilla ResNet-9 generator (ngf 64, 128x128)",
    "mtcnn_align": "MTCNN alignment of a 178x218 face (detect + warp to 64x64)",
}


def demo_face(seed: int = 0, eyeglasses: bool | None = True, smiling: bool | None = None,
              size: tuple[int, int] = (178, 218)) -> tuple[np.ndarray, np.ndarray]:
    """A SynthFaces photo at a CelebA-like size (rendered square at the height, centre-cropped to the width) and its
    five landmarks."""
    from ..data import synthfaces

    w, h = size
    rng = np.random.default_rng(seed)
    identity = synthfaces.sample_identity(rng)
    state = synthfaces.sample_state(identity, rng)
    if eyeglasses is not None:
        state["eyeglasses"] = bool(eyeglasses)
    if smiling is not None:
        state["smiling"] = bool(smiling)
    side = max(w, h)
    img, lm = synthfaces.render_face(identity, state, min(side, synthfaces.MAX_SIZE))
    if img.shape[0] != side:
        from PIL import Image

        k = side / img.shape[0]
        img = np.asarray(Image.fromarray(img).resize((side, side), Image.BICUBIC))
        lm = (lm + 0.5) * k - 0.5
    x0, y0 = (side - w) // 2, (side - h) // 2
    return np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w]), (lm - [x0, y0]).astype(np.float32)


def _stats(times_s: list[float], cpu_s: list[float]) -> dict:
    """Wall-clock median / p95 / min, and the median CPU time of the process per image: with one thread on a busy
    machine that is close to what the image costs on an idle core (time spent descheduled is not counted)."""
    ms = np.asarray(times_s) * 1000.0
    return {"median_ms": round(float(statistics.median(ms)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "min_ms": round(float(ms.min()), 2), "cpu_ms": round(float(statistics.median(cpu_s)) * 1000.0, 2),
            "n": int(len(ms))}


def _time_generator(ngf: int, n_blocks: int, size: int, repeats: int, warmup: int, device) -> dict:
    import torch

    from ..models.networks import ResnetGenerator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = ResnetGenerator(3, 3, ngf, n_blocks, norm="instance", use_dropout=False).to(device).eval()
    x = torch.rand(1, 3, size, size, device=device) * 2 - 1
    times, cpu = [], []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if len(times) >= MIN_REPEATS and time.perf_counter() - start > BUDGET_S:
                break
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0, c0 = time.perf_counter(), time.process_time()
            net(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    return _stats(times, cpu)


def _time_alignment(repeats: int, warmup: int) -> dict:
    import torch

    faces = [demo_face(seed)[0] for seed in range(4)]
    template = synthfaces_template(64)
    times, cpu = [], []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if len(times) >= MIN_REPEATS and time.perf_counter() - start > BUDGET_S:
                break
            rgb = faces[i % len(faces)]
            t0, c0 = time.perf_counter(), time.process_time()
            align_to(rgb, detect_face(rgb, device="cpu"), template, 64)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    return _stats(times, cpu)


def _run_cases(cases, repeats, warmup) -> dict:
    import torch

    cpu = torch.device("cpu")
    out = {}
    if "cpu_demo_64" in cases:
        out["cpu_demo_64"] = _time_generator(32, 6, 64, repeats["cpu_demo_64"], warmup, cpu)
    if "vanilla_128" in cases:
        out["vanilla_128"] = _time_generator(64, 9, 128, repeats["vanilla_128"], warmup, cpu)
    if "mtcnn_align" in cases:
        out["mtcnn_align"] = _time_alignment(repeats["mtcnn_align"], warmup)
    return out


def bench_infer(repeats: dict | None = None, warmup: int = 3, cases=tuple(TARGETS_MS), cuda: bool = True,
                threads: tuple | None = None) -> dict:
    """Latency figures on the CPU with torch's default thread count and with one thread (what the demo uses while
    the CPU is busy, see ``align.adaptive_threads``), and on CUDA for the generators when a GPU is present."""
    import torch

    repeats = {"cpu_demo_64": 100, "vanilla_128": 30, "mtcnn_align": 60, **(repeats or {})}
    default = torch.get_num_threads()
    threads = tuple(threads) if threads else tuple(sorted({default, 1}, reverse=True))
    try:
        load_before = round(os.getloadavg()[0], 2)
    except OSError:
        load_before = None
    out = {"device": "cpu", "torch_threads": default, "cpu_count": os.cpu_count(), "load_avg_before": load_before,
           "by_threads": {}}
    t0 = time.time()
    try:
        for n in threads:
            torch.set_num_threads(n)
            out["by_threads"][n] = _run_cases(cases, repeats, warmup)
    finally:
        torch.set_num_threads(default)
    # The demo's figure per case: the thread setting it would use on this machine now.
    from .align import busy_cpu

    used = 1 if busy_cpu() and 1 in out["by_threads"] else threads[0]
    out["demo_threads"] = used
    out["cases"] = {}
    for key in out["by_threads"][threads[0]]:
        best = min((out["by_threads"][n][key] for n in out["by_threads"]), key=lambda c: c["median_ms"])
        out["cases"][key] = dict(out["by_threads"][used][key], target_ms=TARGETS_MS[key],
                                 meets_target=out["by_threads"][used][key]["median_ms"] < TARGETS_MS[key],
                                 best_median_ms=best["median_ms"])
    out["seconds"] = round(time.time() - t0, 1)
    try:
        out["load_avg_1m"] = round(os.getloadavg()[0], 2)  # above the core count: other work competed
    except OSError:
        pass
    if cuda and torch.cuda.is_available():
        dev = torch.device("cuda")
        out["cuda"] = {"device": torch.cuda.get_device_name(0),
                       "cpu_demo_64": _time_generator(32, 6, 64, repeats["cpu_demo_64"], warmup, dev),
                       "vanilla_128": _time_generator(64, 9, 128, repeats["vanilla_128"], warmup, dev)}
    return out


def format_report(result: dict) -> str:
    lines = [f"bench infer: per-image latency (batch 1) on the CPU ({result['cpu_count']} cores); load average "
             f"{result.get('load_avg_before', '?')} before, {result.get('load_avg_1m', '?')} after"]
    lines.append(f"  {'case':60} {'threads':>7} {'median':>9} {'p95':>9} {'CPU time':>9} {'target':>8}")
    for n, cases in result["by_threads"].items():
        for key, c in cases.items():
            t = TARGETS_MS[key]
            mark = ("ok" if c["median_ms"] < t else "OVER") + ("  <- the demo now" if n == result["demo_threads"] else "")
            lines.append(f"  {LABELS[key]:60} {n:>7} {c['median_ms']:7.1f}ms {c['p95_ms']:7.1f}ms {c['cpu_ms']:7.1f}ms "
                         f"{'<' + str(int(t)) + 'ms':>8}  {mark}  (n={c['n']})")
    if "cuda" in result:
        cu = result["cuda"]
        for key in ("cpu_demo_64", "vanilla_128"):
            lines.append(f"  {LABELS[key] + ' on ' + cu['device']:60} {'':>7} {cu[key]['median_ms']:7.2f}ms "
                         f"{cu[key]['p95_ms']:7.2f}ms")
    lines.append(f"  ({result['seconds']} s in all; the demo uses one thread while the load average is above 0.6 x "
                 "the cores, torch's default otherwise)")
    loads = [x for x in (result.get("load_avg_before"), result.get("load_avg_1m")) if x is not None]
    if loads and max(loads) > 1.0:
        lines.append("  note: other work competed for the CPU during this run, so the wall-clock figures are pessimistic "
                     "(run again on an idle machine); with one thread, the CPU time per image is close to its latency on "
                     "an idle core.")
    return "\n".join(lines)


def write_demo_faces(out_dir) -> list[str]:
    """The example inputs of the Demo tab (assets/demo_faces/): SynthFaces photos at CelebA's 178x218, one rotated
    and scaled into a larger frame, and one with two faces. Deterministic."""
    from pathlib import Path

    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(arr, name):
        Image.fromarray(arr).save(out / name, quality=88)
        written.append(name)

    save(demo_face(1, eyeglasses=True)[0], "glasses.jpg")
    save(demo_face(7, eyeglasses=True, smiling=True)[0], "glasses_smiling.jpg")
    save(demo_face(10, eyeglasses=False)[0], "no_glasses.jpg")
    # Tilted, smaller and off-centre in a wider photo: what alignment is for.
    from PIL import ImageDraw, ImageFilter

    face = Image.fromarray(demo_face(11, eyeglasses=True, size=(218, 218))[0]).rotate(14, Image.BICUBIC)
    mask = Image.new("L", face.size, 0)
    ImageDraw.Draw(mask).ellipse([22, 8, 196, 214], fill=255)  # the head, softly cut out of its square
    mask = mask.filter(ImageFilter.GaussianBlur(6))
    canvas = Image.new("RGB", (320, 240), (92, 110, 128))
    canvas.paste(face.resize((150, 150), Image.LANCZOS), (120, 40), mask.resize((150, 150), Image.LANCZOS))
    save(np.asarray(canvas), "tilted.jpg")
    # Two people: the demo picks the larger face and says so.
    big = Image.fromarray(demo_face(5, eyeglasses=True, size=(218, 218))[0]).resize((180, 180), Image.LANCZOS)
    small = Image.fromarray(demo_face(9, eyeglasses=False, size=(218, 218))[0]).resize((110, 110), Image.LANCZOS)
    canvas = Image.new("RGB", (330, 220), (180, 172, 160))
    canvas.paste(big, (10, 20))
    canvas.paste(small, (205, 60))
    save(np.asarray(canvas), "two_people.jpg")
    return written


if __name__ == "__main__":
    print(format_report(bench_infer()))
