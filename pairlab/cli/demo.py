"""``demo build|install|list`` (the shipped demo checkpoints and the demo workspace) and ``translate``, headless."""
from __future__ import annotations

import json
from pathlib import Path

from .. import lab


def cmd_demo(args) -> int:
    if args.action == "build":
        made = lab.build_demo(Path(args.out) if args.out else None, max_iters=args.max_iters, threads=args.threads,
                             only=[n.strip() for n in args.only.split(",") if n.strip()] if args.only else None)
        print(f"wrote {len(made)} demo checkpoints to {args.out or lab.shipped_root()}")
    elif args.action == "install":
        def report(f, m):
            print(f"  demo {100 * f:5.1f}%  {m}", flush=True)

        summary = lab.install_demo(progress=report if args.progress else None)
        print(json.dumps(summary, indent=1))
    else:
        for s in lab.shipped_checkpoints():
            m = s.manifest
            metrics = ", ".join(f"{k} {v['mean']:.3f}" for k, v in (m.get("metrics") or {}).items() if v.get("mean") is not None)
            print(f"{s.name:20s} {m.get('model', ''):9s} {m.get('image_size')}px  {s.path.stat().st_size / 1e6:5.1f} MB  "
                  f"iter {m.get('iteration')}  {metrics}")
            base = (m.get("baseline") or {}).get("metrics") or {}
            if base:
                print(f"{'':20s} input unchanged on the same test images: "
                      + ", ".join(f"{k} {v['mean']:.3f}" for k, v in base.items() if v.get("mean") is not None))
    return 0


def cmd_translate(args) -> int:
    summary = lab.translate_files(args.checkpoint, args.images, args.out, direction=args.direction, pseudo=args.pseudo,
                              device=args.device, echo=print)
    for c in summary["checkpoints"]:
        if c["template_note"]:
            print(f"note: {c['template_note']}")
    print(f"{summary['ok']} of {len(summary['images'])} image(s) translated into {args.out} (timings.json lists the files "
          "and times).")
    return 0 if summary["ok"] else 2


def add_commands(sub) -> None:
    d = sub.add_parser("demo", help="the shipped demo checkpoints: list, build (retrain), install (demo workspace)",
                       description="list: the shipped demo checkpoints and their metrics. build: retrain them from the "
                                   "default SynthFaces with the cpu-demo-64 preset into checkpoints/demo/ (use a scratch "
                                   "PAIRLAB_HOME; about half an hour on a 2-core CPU; resumes when run again). install: "
                                   "turn the current workspace into the demo workspace a fresh app start opens.")
    d.add_argument("action", choices=["list", "build", "install"])
    d.add_argument("--out", default=None, help="build: where to write (default checkpoints/demo)")
    d.add_argument("--max-iters", type=int, default=None, help="build: another number of iterations than the shipped 4,000 (a quick try; not what ships)")
    d.add_argument("--only", default=None, help="build: comma-separated names (default: all)")
    d.add_argument("--threads", type=int, default=0, help="build: CPU threads per training (default: torch's)")
    d.add_argument("--progress", action="store_true", help="install: print progress lines")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("translate", help="translate face photos with a checkpoint (aligned like its training crops)",
                       description="Find the face in each image (MTCNN; the largest when there are several), align it "
                                   "onto the checkpoint's landmark template, translate it and write IMAGE_aligned.png, "
                                   "IMAGE_<checkpoint>.png (and IMAGE_pseudo.png with --pseudo) plus timings.json "
                                   "into --out. A bad image gets one sentence and the others go on.")
    t.add_argument("checkpoint", help="a shipped demo name (python -m pairlab demo list), a run id, a run folder, a "
                                      "shipped checkpoint folder or a .pt file")
    t.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, ...)")
    t.add_argument("--out", required=True, help="output folder (created if missing)")
    t.add_argument("--direction", default="AtoB", choices=list(lab.DIRECTIONS),
                   help="AtoB (default: remove the attribute) or BtoA (CycleGAN and hybrid runs only)")
    t.add_argument("--pseudo", action="store_true", help="also write the synthesizer's pseudo-sample M(x) of each face")
    t.add_argument("--device", default="auto", help="auto (default: CUDA when present), cpu, cuda, cuda:N or mps")
    t.set_defaults(func=cmd_translate)
