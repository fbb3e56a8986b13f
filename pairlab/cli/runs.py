"""``train`` (foreground) and ``runs`` (the background queue), headless."""
from __future__ import annotations

import json
import time

from .. import lab
from .common import overrides


def cmd_train(args) -> int:
    run_dir = lab.train_foreground(args.composition, args.model, args.preset, overrides(args.set), seed=args.seed,
                                   name=args.name)
    status = lab.Run(run_dir).status()
    print(f"Run {run_dir.name} is {status.get('state')} at iteration {status.get('iteration')}/{status.get('total')}; "
          f"folder {run_dir}")
    return 0


# ------------------------------------------------------------------------------------ runs (the queue)
def _print_runs(runs) -> None:
    format_eta = lab.format_eta

    if not runs:
        print("No runs yet.")
        return
    width = max([5] + [len(str(r.get('where') or r.get('device') or '-')) for r in runs])
    print(f"{'state':9} {'progress':>8} {'iter':>13} {'ETA':>7} {'where':{width}} id")
    for r in runs:
        it = f"{r['iteration']}/{r['total'] or '?'}"
        where = r.get('where') or r['device'] or '-'
        print(f"{r['shown_state']:9} {100 * r['progress']:7.1f}% {it:>13} {format_eta(r['eta_s']):>7} "
              f"{where:{width}} {r['id']}" + (f"\n{'':10}{r['error']}" if r['error'] else ""))


def cmd_runs(args) -> int:
    q = lab.queue()
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
        ids = q.launch(args.compositions, args.model, args.preset, overrides(args.set), args.seeds, name=args.name,
                       executor=args.executor)
        for run_id in ids:
            print(f"queued {run_id}")
        if args.executor == "slurm":
            print("Submitted to SLURM; `runs list` shows each job's id and state.")
        else:
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
            info = q.resume(run_id, executor=args.executor)
        elif action == "retry":
            info = q.retry(run_id, executor=args.executor)
        elif action == "delete":
            q.delete(run_id)
            print(f"deleted {run_id}")
            continue
        else:  # argparse restricts the choices
            raise ValueError(action)
        print(f"{run_id}: {info['shown_state']}" + (f" - {info['error']}" if info["error"] and info["state"] in lab.FINAL_STATES else ""))
    return 0



def add_commands(sub) -> None:
    t = sub.add_parser("train", help="train a model on a composition in the foreground",
                       description="Train CycleGAN / Pix2Pix / hybrid on a composition in the foreground, into "
                                   "$PAIRLAB_HOME/runs/<id>/. The same command again resumes the run; Ctrl+C stops it "
                                   "after saving a checkpoint.")
    t.add_argument("composition", help="a composition name (under $PAIRLAB_HOME/compositions) or folder")
    t.add_argument("--model", default="cyclegan", choices=list(lab.MODEL_NAMES), help="model kind (default cyclegan)")
    t.add_argument("--preset", default="cpu-demo-64",
                   help="named settings: paper-128, paper-002 (the hybrid of 'very few pairs': use with --model hybrid), cpu-demo-64 "
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
    ru.add_argument("--model", default="cyclegan", choices=list(lab.MODEL_NAMES), help="model kind (default cyclegan)")
    ru.add_argument("--preset", default="cpu-demo-64", help="named settings (default cpu-demo-64)")
    ru.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting (repeatable)")
    ru.add_argument("--seeds", default="0", help="seeds, e.g. 0,1,2 or 0-4 (default 0)")
    ru.add_argument("--name", default=None, help="run name (single run only)")
    ru.add_argument("--executor", default="local", choices=["local", "slurm"],
                    help="local: this machine's slots (default); slurm: one SLURM job per run, one job array per "
                         "sweep (cluster config: $PAIRLAB_HOME/cluster.json, PAIRLAB_SLURM_*)")
    for action, text in (("stop", "stop runs (they save a checkpoint first)"), ("resume", "resume stopped or failed runs"),
                         ("retry", "retry failed runs from their last good checkpoint"),
                         ("delete", "delete runs (stopping them first)")):
        ra = rs.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        ra.add_argument("runs", nargs="+", help="run ids (see `runs list`)")
        if action == "stop":
            ra.add_argument("--wait", type=float, default=0.0, help="wait up to this many seconds for the run to stop")
        if action in ("resume", "retry"):
            ra.add_argument("--executor", default=None, choices=["local", "slurm"],
                            help="where to continue (default: where it ran before)")
    rv = rs.add_parser("serve", help="run the scheduler in the foreground (headless machines)",
                       description="Reconcile, then start queued runs as slots free up, until nothing is queued or running.")
    rv.add_argument("--interval", type=float, default=2.0, help="seconds between scheduler ticks (default 2)")
    rv.add_argument("--forever", action="store_true", help="keep serving when the queue is empty")
    r.set_defaults(func=cmd_runs)
