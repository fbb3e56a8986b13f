"""``bench``: performance figures (no pass/fail)."""
from __future__ import annotations


def cmd_bench(args) -> int:
    from .. import bench

    return bench.run(args.what, args)


def add_commands(sub) -> None:
    b = sub.add_parser("bench", help="print performance figures", description="Benchmarks that print figures (no pass/fail).")
    b.add_argument("what", choices=["data", "train", "sweep", "eval", "votes", "infer", "features"],
                   help="data: SynthFaces rendering and pseudo-eyeglasses throughput at 128x128; "
                        "train: seconds per training iteration, GFLOP/s and memory (cpu-demo-64, vanilla CycleGAN at 64 and 128); "
                        "sweep: iterations/s per core of many small runs (vanilla CycleGAN at 64): one run on all "
                        "cores, one 1-thread run per core, a 3-seed sweep as separate runs and as batched seeds; "
                        "eval: seconds to evaluate 500 test images at 64 and 128, cold and cached; "
                        "votes: 50 concurrent participants x 40 votes through the study's HTTP interface, with think time "
                        "between votes (log-normal, median 2 s) and as a closed-loop saturation test; "
                        "infer: per-image latency (median, p95) of the demo's generators and MTCNN alignment; "
                        "features: the feature-space figure for --points source points (build, JSON, HTML, PNG) and "
                        "simple-CNN feature throughput")
    b.add_argument("--size", type=int, default=128, help="image size (default 128)")
    b.add_argument("--n", type=int, default=300, help="images per repeat (default 300)")
    b.add_argument("--points", type=int, default=20000, help="features: source points (default 20000)")
    b.set_defaults(func=cmd_bench)
