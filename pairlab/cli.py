"""pairlab's command line: the same operations as the app, headless.  ``python -m pairlab COMMAND --help``."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import UserError


def _progress_printer(prefix: str):
    state = {"last": -1.0}

    def report(fraction: float, message: str) -> None:
        if fraction - state["last"] >= 0.05 or fraction >= 1.0:
            state["last"] = fraction
            print(f"{prefix} {fraction * 100:5.1f}%  {message}", flush=True)

    return report


# ------------------------------------------------------------------------------------ synthfaces
def cmd_synthfaces(args) -> int:
    from .data import synthfaces

    t0 = time.time()
    summary = synthfaces.generate(args.out, count=args.count, size=args.size, seed=args.seed,
                                  progress=_progress_printer("synthfaces"))
    dt = time.time() - t0
    print(f"Rendered {args.count} faces at {args.size}x{args.size} into {args.out} in {dt:.1f} s ({args.count / dt:.0f} images/s).")
    print(json.dumps(summary, indent=1, default=str))
    return 0


# ------------------------------------------------------------------------------------ compose
def _source_from_args(args):
    from . import lab

    if args.source == "synthfaces":
        return lab.synthfaces_source(args.sf_count, args.sf_size, args.sf_seed, progress=_progress_printer("synthfaces"))
    from .data.sources import open_source

    return open_source(args.source, None if args.layout == "auto" else args.layout)


def cmd_compose(args) -> int:
    from . import lab
    from .data.compose import load_manifest
    from .data.recipes import Recipe

    recipe = Recipe(kind=args.recipe, task=args.task, n=args.n, alpha=args.alpha, augmentation=args.augmentation,
                    pseudo_alpha=args.pseudo_alpha, pairs_from=args.pairs_from, n_test=args.n_test,
                    selection=args.selection, balance_copies=args.balance_copies, image_size=args.image_size,
                    seed=args.seed).validate()
    source = _source_from_args(args)
    for note in source.notes:
        print("note:", note)
    path = lab.build_composition(source, recipe, name=args.name, progress=_progress_printer("compose"))
    m = load_manifest(path)
    c = m["counts"]
    print(f"Built {path}")
    print(f"  trainA {c['trainA']}  trainB {c['trainB']}  testA {c['testA']}  testB {c['testB']}  "
          f"paired {c['paired']}  measured alpha {m['alpha']:.4f}")
    if m["skipped"]:
        print("  skipped: " + ", ".join(f"{n} {r}" for r, n in m["skipped"].items()))
    return 0


# ------------------------------------------------------------------------------------ bench
def cmd_bench(args) -> int:
    from . import bench

    return bench.run(args.what, args)


# ------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    from .data.recipes import AUGMENTATIONS, KINDS, SELECTIONS

    p = argparse.ArgumentParser(prog="python -m pairlab", description=__doc__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("synthfaces", help="render a SynthFaces dataset in the CelebA layout",
                       description="Render N procedural faces (with eyeglasses / smile ground truth) in the CelebA layout.")
    s.add_argument("out", help="output folder (must not exist)")
    s.add_argument("--count", type=int, default=1000, help="number of images (default 1000)")
    s.add_argument("--size", type=int, default=128, help="image size in pixels, 64 to 256 (default 128)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.set_defaults(func=cmd_synthfaces)

    c = sub.add_parser("compose", help="build a composition (alpha-paired / pseudo-paired / explicit dataset)",
                       description="Build a composition from a source and a recipe into $PAIRLAB_HOME/compositions/.")
    c.add_argument("source", help="a source folder, or 'synthfaces' for the workspace's SynthFaces (rendered if needed)")
    c.add_argument("--layout", default="auto", choices=["auto", "celeba", "unaligned", "aligned"], help="source layout (default: detect)")
    c.add_argument("--sf-count", type=int, default=1500, help="SynthFaces: number of images (default 1500)")
    c.add_argument("--sf-size", type=int, default=128, help="SynthFaces: image size (default 128)")
    c.add_argument("--sf-seed", type=int, default=0, help="SynthFaces: render seed (default 0)")
    c.add_argument("--recipe", default="alpha-paired", choices=KINDS, help="recipe kind (default alpha-paired)")
    c.add_argument("--task", default="eyeglasses", choices=["eyeglasses", "smile", "folders"], help="A = with the attribute, B = without")
    c.add_argument("--n", type=int, default=200, help="real images per domain (default 200)")
    c.add_argument("--alpha", type=float, default=0.5, help="alpha-paired: share of A with its counterpart in B")
    c.add_argument("--augmentation", default="pseudo-paired", choices=AUGMENTATIONS, help="pseudo: what to add to A")
    c.add_argument("--pseudo-alpha", type=float, default=0.5, help="pseudo-paired: share of A that are pseudo-pairs (Table 5)")
    c.add_argument("--pairs-from", default="pseudo", choices=["pseudo", "true"], help="explicit: pseudo-pairs or true pairs")
    c.add_argument("--n-test", type=int, default=100, help="test images per domain (default 100)")
    c.add_argument("--selection", default="random", choices=SELECTIONS, help="which samples get pairs")
    c.add_argument("--balance-copies", type=int, default=0, help="extra copies of each paired sample (paper 002)")
    c.add_argument("--image-size", type=int, default=0, help="centre-crop and resize to this size (0 keeps the source's)")
    c.add_argument("--seed", type=int, default=0, help="recipe seed (default 0)")
    c.add_argument("--name", default=None, help="composition name (default: derived from source and recipe)")
    c.set_defaults(func=cmd_compose)

    b = sub.add_parser("bench", help="print performance figures", description="Benchmarks that print figures (no pass/fail).")
    b.add_argument("what", choices=["data"], help="data: SynthFaces rendering and pseudo-eyeglasses throughput at 128x128")
    b.add_argument("--size", type=int, default=128, help="image size (default 128)")
    b.add_argument("--n", type=int, default=300, help="images per repeat (default 300)")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
