"""pairlab's command line: the same operations as the app, headless.  ``python -m pairlab COMMAND --help``."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import UserError
from .models.spec import MODEL_NAMES


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
    # the same rule as the app: resolved first (no '..', links followed), then it must lie under an allowed root
    return lab.open_user_source(args.source, None if args.layout == "auto" else args.layout)


def cmd_compose(args) -> int:
    from . import lab
    from .data.compose import load_manifest
    from .data.recipes import Recipe

    recipe = Recipe(kind=args.recipe, task=args.task, n=args.n, alpha=args.alpha, augmentation=args.augmentation,
                    pseudo_alpha=args.pseudo_alpha, pairs_from=args.pairs_from, n_test=args.n_test,
                    selection=args.selection, paired_copies=args.paired_copies, disjoint_identities=not args.mixed_identities, image_size=args.image_size,
                    seed=args.seed).validate()
    source = _source_from_args(args)
    for note in source.notes:
        print("note:", note)
    path = lab.build_composition(source, recipe, name=args.name, progress=_progress_printer("compose"))
    m = load_manifest(path)
    c = m["counts"]
    print(f"Built {path}")
    note = lab.name_note(args.name, path.name)
    if note:
        print("note: " + note)
    print(f"  trainA {c['trainA']}  trainB {c['trainB']}  testA {c['testA']}  testB {c['testB']}  "
          f"paired {c['paired']}  measured alpha {m['alpha']:.4f}")
    for line in lab.skip_report(path):
        print("  " + line)
    return 0


# ------------------------------------------------------------------------------------ train
def _overrides(items) -> list[str]:
    from .train.queue import parse_overrides

    out = []
    for item in items or []:
        out += parse_overrides(item)
    return out


def cmd_train(args) -> int:
    from . import workspace
    from .train.loop import read_status, train_command
    from .train.queue import resolve_composition

    comp = resolve_composition(args.composition)
    run_dir = train_command(comp, args.model, args.preset, _overrides(args.set), name=args.name, seed=args.seed,
                            presets_dir=workspace.home() / "presets")
    status = read_status(run_dir)
    print(f"Run {run_dir.name} is {status.get('state')} at iteration {status.get('iteration')}/{status.get('total')}; "
          f"folder {run_dir}")
    return 0


# ------------------------------------------------------------------------------------ runs (the queue)
def _print_runs(runs) -> None:
    from .train.queue import format_eta

    if not runs:
        print("No runs yet.")
        return
    print(f"{'state':9} {'progress':>8} {'iter':>13} {'ETA':>7} {'device':7} id")
    for r in runs:
        it = f"{r['iteration']}/{r['total'] or '?'}"
        print(f"{r['shown_state']:9} {100 * r['progress']:7.1f}% {it:>13} {format_eta(r['eta_s']):>7} "
              f"{r['device'] or '-':7} {r['id']}" + (f"\n{'':10}{r['error']}" if r['error'] else ""))


def cmd_runs(args) -> int:
    from .train.queue import FINAL, Queue

    q = Queue()
    action = args.action
    if action == "list":
        q.tick()
        runs = q.list_runs()
        if args.json:
            print(json.dumps(runs, indent=1))
        else:
            _print_runs(runs)
        print(f"slots: {q.describe_slots()}")
        return 0
    if action == "submit":
        if args.name and (len(args.compositions) > 1 or len(args.seeds.split(",")) > 1):
            raise UserError("--name names a single run; leave it out for a sweep.")
        if args.name:
            ids = [q.submit(args.compositions[0], args.model, args.preset, _overrides(args.set), int(args.seeds),
                            name=args.name)]
        else:
            ids = q.sweep(args.compositions, args.model, args.preset, args.seeds, _overrides(args.set))
        for run_id in ids:
            print(f"queued {run_id}")
        print("Runs start when a slot is free while the lab app or `python -m pairlab runs serve` is running.")
        return 0
    if action == "serve":
        print(f"pairlab queue in {q.root}; slots: {q.describe_slots()}", flush=True)
        q.reconcile()
        seen = {}
        while True:
            q.tick()
            runs = q.list_runs()
            for r in runs:
                key = (r["shown_state"], r["iteration"])
                if seen.get(r["id"]) != key:
                    seen[r["id"]] = key
                    print(f"{time.strftime('%H:%M:%S')} {r['id']}: {r['shown_state']} {r['iteration']}/{r['total'] or '?'}"
                          + (f" - {r['error']}" if r["error"] else ""), flush=True)
            if not args.forever and not any(r["state"] in ("queued", "running") and r["queued"] for r in runs):
                print("Nothing queued or running.")
                return 0
            time.sleep(args.interval)
    for run_id in args.runs:
        if action == "stop":
            info = q.stop(run_id, wait=args.wait)
        elif action == "resume":
            info = q.resume(run_id)
        elif action == "retry":
            info = q.retry(run_id)
        elif action == "delete":
            q.delete(run_id)
            print(f"deleted {run_id}")
            continue
        else:  # argparse restricts the choices
            raise ValueError(action)
        print(f"{run_id}: {info['shown_state']}" + (f" - {info['error']}" if info["error"] and info["state"] in FINAL else ""))
    return 0


# ------------------------------------------------------------------------------------ evaluate
def cmd_evaluate(args) -> int:
    from .eval.evaluate import aggregate_seeds, evaluate_runs, format_table

    results = evaluate_runs(args.runs, metrics=args.metrics, checkpoint=args.checkpoint, direction=args.direction,
                            progress=_progress_printer("evaluate") if args.progress else None,
                            baseline=not args.no_baseline)
    print(format_table(results, ci=not args.no_ci))
    if args.seeds:
        print("\nover seeds (mean of seed means, 95% t-interval of the seed means):")
        print(format_table(aggregate_seeds(results), ci=not args.no_ci))
    return 0 if any(r["ok"] for r in results) else 2


# ------------------------------------------------------------------------------------ features
def cmd_features(args) -> int:
    from .eval import feature_plot, features

    request = features.FeatureRequest(composition=args.composition, runs=tuple(args.runs), encoder=args.encoder,
                                      sigma=args.sigma, source=args.source, task=args.task, direction=args.direction,
                                      checkpoint=args.checkpoint, train_encoder=args.train_encoder,
                                      max_points=args.max_points)
    space = features.feature_space(request, progress=_progress_printer("features"))
    out = args.out or feature_plot.export_dir()
    paths = feature_plot.export(space, out)
    print(features.summary_text(space))
    for problem in space.problems:
        print(f"note: {problem}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


# ------------------------------------------------------------------------------------ bench
def cmd_bench(args) -> int:
    if args.what == "infer":  # the demo's latency figures (pairlab/demo/bench.py)
        from .demo.bench import bench_infer, format_report

        print(format_report(bench_infer()))
        return 0
    if args.what == "features":  # the feature-space figure at 20,000 points (pairlab/eval/features.py)
        from .eval.feature_bench import bench_features

        for key, value in bench_features(args.points).items():
            print(f"{key}: {value}")
        return 0
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
    c.add_argument("--paired-copies", "--balance-copies", dest="paired_copies", type=int, default=0,
                   help="extra on-disk copies of each paired sample in both domains (paper 002; default 0)")
    c.add_argument("--mixed-identities", action="store_true",
                   help="alpha-paired: let B's unpaired part include identities that are in A (default: kept apart)")
    c.add_argument("--image-size", type=int, default=0, help="centre-crop and resize to this size (0 keeps the source's)")
    c.add_argument("--seed", type=int, default=0, help="recipe seed (default 0)")
    c.add_argument("--name", default=None, help="composition name (default: derived from source and recipe)")
    c.set_defaults(func=cmd_compose)

    t = sub.add_parser("train", help="train a model on a composition in the foreground",
                       description="Train CycleGAN / Pix2Pix / hybrid on a composition in the foreground, into "
                                   "$PAIRLAB_HOME/runs/<id>/. The same command again resumes the run; Ctrl+C stops it "
                                   "after saving a checkpoint.")
    t.add_argument("composition", help="a composition name (under $PAIRLAB_HOME/compositions) or folder")
    t.add_argument("--model", default="cyclegan", choices=list(MODEL_NAMES), help="model kind (default cyclegan)")
    t.add_argument("--preset", default="cpu-demo-64",
                   help="named settings: paper-128, paper-002 (paper 002's hybrid: use with --model hybrid), cpu-demo-64 "
                        "or a saved preset (default cpu-demo-64)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set lr=1e-4 --set max_iters=300 (repeatable; commas also separate); "
                        "hybrid: --set paired_repeats=K repeats each paired sample K times per epoch, 0 as often "
                        "as matches the unpaired count (old name balance_copies)")
    t.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 0)")
    t.add_argument("--name", default=None, help="run folder name (default: derived from composition, model, preset, seed, settings)")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("runs", help="the background training queue: list, submit, stop, resume, retry, delete, serve",
                       description="Operate the background queue headless (the same queue as the Training tab).")
    rs = r.add_subparsers(dest="action", metavar="ACTION")
    rs.required = True
    rl = rs.add_parser("list", help="list runs with state, progress and ETA", description="List every run of the workspace.")
    rl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ru = rs.add_parser("submit", help="queue runs (one per composition x seed)",
                       description="Queue one run per composition x seed; they start when a slot is free.")
    ru.add_argument("compositions", nargs="+", help="composition names or folders")
    ru.add_argument("--model", default="cyclegan", choices=list(MODEL_NAMES), help="model kind (default cyclegan)")
    ru.add_argument("--preset", default="cpu-demo-64", help="named settings (default cpu-demo-64)")
    ru.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting (repeatable)")
    ru.add_argument("--seeds", default="0", help="seeds, e.g. 0,1,2 or 0-4 (default 0)")
    ru.add_argument("--name", default=None, help="run name (single run only)")
    for action, text in (("stop", "stop runs (they save a checkpoint first)"), ("resume", "resume stopped or failed runs"),
                         ("retry", "retry failed runs from their last good checkpoint"),
                         ("delete", "delete runs (stopping them first)")):
        ra = rs.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        ra.add_argument("runs", nargs="+", help="run ids (see `runs list`)")
        if action == "stop":
            ra.add_argument("--wait", type=float, default=0.0, help="wait up to this many seconds for the run to stop")
    rv = rs.add_parser("serve", help="run the scheduler in the foreground (headless machines)",
                       description="Reconcile, then start queued runs as slots free up, until nothing is queued or running.")
    rv.add_argument("--interval", type=float, default=2.0, help="seconds between scheduler ticks (default 2)")
    rv.add_argument("--forever", action="store_true", help="keep serving when the queue is empty")
    r.set_defaults(func=cmd_runs)

    e = sub.add_parser("evaluate", help="evaluate runs: cached test outputs, metrics with 95%% intervals, a table",
                       description="Translate each run's test set (cached by checkpoint hash), compute the metrics, "
                                   "write metrics.json into each run folder and print a table.")
    e.add_argument("runs", nargs="+", metavar="RUN", help="run folders or run ids under $PAIRLAB_HOME/runs")
    e.add_argument("--metrics", default=None, help="comma-separated metric names (default: every available one)")
    e.add_argument("--checkpoint", default="latest", help="latest (default), an iteration number or a file name")
    e.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA", "both"], help="default AtoB")
    e.add_argument("--seeds", action="store_true", help="also aggregate runs that differ only by seed")
    e.add_argument("--no-ci", action="store_true", help="print means without their intervals")
    e.add_argument("--no-baseline", action="store_true",
        help="leave out the input-unchanged (identity map) row on the same test images")
    e.add_argument("--progress", action="store_true", help="print progress lines")
    e.set_defaults(func=cmd_evaluate)

    f = sub.add_parser("features", help="the feature-space plot (paper Figure 9): PCA of learned features, PNG + HTML",
                       description="Fit a PCA on the features of every image of the source (the attribute "
                                   "classifier's penultimate layer, or the identity encoder's embedding) and plot the "
                                   "space of training data (all data, real attribute-on / -off, the composition's "
                                   "pseudo-samples) and of test data (with each run's test outputs), each group with "
                                   "its covariance ellipse. Writes feature-space.png, feature-space.html (standalone), "
                                   "groups.csv and feature-space.json, and prints the group means and distances.")
    f.add_argument("composition", nargs="?", default=None,
                   help="a composition name or folder (default: the first run's composition)")
    f.add_argument("--runs", nargs="*", default=[], metavar="RUN", help="run ids or folders whose test outputs to place")
    f.add_argument("--encoder", default="attribute", choices=["attribute", "identity"],
                   help="attribute: the attribute classifier's penultimate layer (default); identity: the identity "
                        "encoder's embedding")
    f.add_argument("--sigma", type=float, default=1.0, choices=[1.0, 2.0], help="ellipse radius in sigma (default 1)")
    f.add_argument("--source", default=None, help="a source folder (default: the composition's source, else SynthFaces)")
    f.add_argument("--task", default="eyeglasses", choices=["eyeglasses", "smile"],
                   help="the attribute when no composition says it (default eyeglasses)")
    f.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="which test outputs (default AtoB)")
    f.add_argument("--checkpoint", default="latest", help="latest (default), an iteration number or a file name")
    f.add_argument("--train-encoder", action="store_true", help="train the encoder first if it is not trained yet")
    f.add_argument("--max-points", type=int, default=20000, help="points drawn per group (default 20000; "
                                                                 "ellipses and means use every point)")
    f.add_argument("--out", default=None, help="output folder (default $PAIRLAB_HOME/cache/feature-exports/<time>)")
    f.set_defaults(func=cmd_features)

    b = sub.add_parser("bench", help="print performance figures", description="Benchmarks that print figures (no pass/fail).")
    b.add_argument("what", choices=["data", "train", "eval", "votes", "infer", "features"],
                   help="data: SynthFaces rendering and pseudo-eyeglasses throughput at 128x128; "
                        "train: seconds per training iteration, GFLOP/s and memory (cpu-demo-64, vanilla CycleGAN at 64 and 128); "
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

    from .study.cli import add_study_commands

    add_study_commands(sub)
    from .demo.cli import add_demo_commands

    add_demo_commands(sub)
    from .demo.translate import add_translate_command

    add_translate_command(sub)
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
