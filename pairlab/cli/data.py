"""``synthfaces`` and ``compose``: sources and compositions, headless."""
from __future__ import annotations

import json
import time

from .. import lab
from .common import progress_printer


# ------------------------------------------------------------------------------------ synthfaces
def cmd_synthfaces(args) -> int:
    t0 = time.time()
    summary = lab.render_synthfaces(args.out, count=args.count, size=args.size, seed=args.seed,
                                  progress=progress_printer("synthfaces"))
    dt = time.time() - t0
    print(f"Rendered {args.count} faces at {args.size}x{args.size} into {args.out} in {dt:.1f} s ({args.count / dt:.0f} images/s).")
    print(json.dumps(summary, indent=1, default=str))
    return 0


# ------------------------------------------------------------------------------------ compose
def _source_from_args(args):
    if args.source == "synthfaces":
        return lab.synthfaces_source(args.sf_count, args.sf_size, args.sf_seed, progress=progress_printer("synthfaces"))
    # the same rule as the app: resolved first (no '..', links followed), then it must lie under an allowed root
    return lab.open_user_source(args.source, None if args.layout == "auto" else args.layout)


def cmd_compose(args) -> int:
    # the same Recipe builder as the Datasets tab
    recipe = lab.Recipe.from_form({"kind": args.recipe, "task": args.task, "n": args.n, "alpha": args.alpha,
                               "augmentation": args.augmentation, "pseudo_alpha": args.pseudo_alpha,
                               "pairs_from": args.pairs_from, "n_test": args.n_test, "selection": args.selection,
                               "paired_copies": args.paired_copies, "disjoint_identities": not args.mixed_identities,
                               "image_size": args.image_size, "seed": args.seed})
    source = _source_from_args(args)
    for note in source.notes:
        print("note:", note)
    path = lab.build_composition(source, recipe, name=args.name, progress=progress_printer("compose"))
    m = lab.load_manifest(path)
    c = m["counts"]
    print(f"Built {path}")
    note = lab.name_note(args.name, path.name)
    if note:
        print("note: " + note)
    print(f"  trainA {c['trainA']}  trainB {c['trainB']}  testA {c['testA']}  testB {c['testB']}  "
          f"paired {c['paired']}  measured alpha {m['alpha_measured']:.4f}")
    for line in lab.skip_report(path):
        print("  " + line)
    return 0



def add_commands(sub) -> None:
    AUGMENTATIONS, KINDS, SELECTIONS = lab.AUGMENTATIONS, lab.KINDS, lab.SELECTIONS
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
    c.add_argument("--paired-copies", "--balance-copies", dest="paired_copies", type=int, default=0,
                   help="extra on-disk copies of each paired sample in both domains (balances few pairs against many unpaired images, as in 'very few pairs'; default 0)")
    c.add_argument("--mixed-identities", action="store_true",
                   help="alpha-paired: let B's unpaired part include identities that are in A (default: kept apart)")
    c.add_argument("--image-size", type=int, default=0, help="centre-crop and resize to this size (0 keeps the source's)")
    c.add_argument("--seed", type=int, default=0, help="recipe seed (default 0)")
    c.add_argument("--name", default=None, help="composition name (default: derived from source and recipe)")
    c.set_defaults(func=cmd_compose)
