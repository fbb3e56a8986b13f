"""``experiment``: the paper's experiments, headless (plan, run, status, report)."""
from __future__ import annotations

from .. import lab
from ..errors import UserError
from .common import progress_printer

ACTIONS = ("plan", "status", "report")


def _plan(args):
    name = args.name if args.what in ACTIONS else args.what
    if args.what in ACTIONS and not name:
        raise UserError(f"Name the experiment: python -m pairlab experiment {args.what} NAME (one of "
                        f"{', '.join(lab.EXPERIMENTS)} or all).")
    if args.what not in ACTIONS and args.name:
        raise UserError(f"Give one experiment name (got {args.what} and {args.name}).")
    return lab.plan_experiment(name, args.task, args.profile, args.seeds, args.n)


def _print_estimate(plan, est) -> None:
    p = plan.profile
    print(f"experiment(s) {', '.join(plan.experiments)}, task {plan.task}, profile {p.name}: {p.description}")
    print(f"{len(plan.arms)} arms x {len(plan.seeds)} seeds = {len(est['runs'])} runs "
          f"(seeds {', '.join(map(str, plan.seeds))})")
    for arm_id, arm in plan.arms.items():
        iters = next(r["iterations"] for r in est["runs"] if r["arm"] == arm_id)
        print(f"  {arm_id:22s} {arm.model:9s} {arm.recipe.short_name():28s} {iters} iterations per run")
    for kind, m in est["models"].items():
        if m["s_per_iter"]:
            print(f"measured here: {kind} {m['s_per_iter']:.3f} s/iteration with {est['threads_per_run']} thread(s) per run")
    print(f"estimated: training {lab.format_eta(est['train_s'])} of slot time on {est['slots']} slot(s) in parallel, "
          f"evaluation about {lab.format_eta(est['eval_s'])}; wall time about {lab.format_eta(est['wall_s'])}")


def cmd_experiment(args) -> int:
    plan = _plan(args)
    if args.what == "plan":
        _print_estimate(plan, lab.estimate_experiment(plan, measure=not args.no_measure))
        return 0
    if args.what == "status":
        st = lab.experiment_status(plan)
        for r in st["runs"]:
            print(f"{r['state']:10s} {r['iteration']:>6}/{r['total'] or '?':<6} {r['id']}"
                  + (f"  {r['error']}" if r.get("error") else ""))
        print(f"{100 * st['fraction']:.1f}% of the iterations done; "
              + ", ".join(f"{n} {s}" for s, n in sorted(st["counts"].items()))
              + (f"; ETA {lab.format_eta(st['eta_s'])}" if st["eta_s"] else ""))
        print(f"folder: {lab.experiment_dir(plan)}")
        return 0
    if args.what != "report":
        lab.start_experiment(plan, progress=progress_printer("experiment"), executor=args.executor)
        print(f"experiment folder: {lab.experiment_dir(plan)}")
        if args.no_wait:
            print("Queued; the runs train while the lab app or `python -m pairlab runs serve` is running. "
                  "`experiment report NAME` writes the results of what has finished.")
            return 0
        lab.wait_for_experiment(plan)
    out = lab.report_experiment(plan, progress=progress_printer("report"))
    for name, got in out.items():
        print(f"\n== {name} ({got['paths']['report.html']})")
        for c in got["results"]["claims"]:
            print(f"  {c['claim_id']}: {c['text']}")
    return 0


def add_commands(sub) -> None:
    e = sub.add_parser("experiment", help="run the paper's experiments: plan, run (resumes), status, report",
                       description="Each experiment builds its compositions, queues its runs (they survive restarts "
                                   "and show in the Training tab), evaluates them with the input-unchanged baseline "
                                   "and writes the table in the paper's layout with 95%% intervals over seeds, a "
                                   "paired test across seeds per claim of the implicit-pairs paper (Ginger et al.) with a verdict, the paper's own "
                                   "numbers, a comparison grid and a standalone HTML report (plus CSV / LaTeX). "
                                   "Running it again continues where it stopped.")
    e.add_argument("what", metavar="NAME|plan|status|report",
                   help=f"an experiment ({', '.join(lab.EXPERIMENTS)}, or all) to run, or plan / status / report "
                        "followed by the name")
    e.add_argument("name", nargs="?", default=None, help="the experiment, after plan / status / report")
    e.add_argument("--task", default="eyeglasses", choices=["eyeglasses", "smile"], help="default eyeglasses")
    e.add_argument("--profile", default="quick", help="quick (a 2-core CPU, about 3 h for all), paper (a GPU), tiny")
    e.add_argument("--seeds", default=None, help="seeds, e.g. 0,1,2 (default: the profile's)")
    e.add_argument("--n", type=int, default=None, help="real images per domain (default: the profile's)")
    e.add_argument("--executor", default="local", choices=["local", "slurm"],
                   help="local: this machine's slots (default); slurm: every run as one SLURM job array "
                        "(cluster config: $PAIRLAB_HOME/cluster.json, PAIRLAB_SLURM_*)")
    e.add_argument("--no-wait", action="store_true", help="queue the runs and return (the app or `runs serve` trains)")
    e.add_argument("--no-measure", action="store_true", help="plan: skip the step-time measurement")
    e.set_defaults(func=cmd_experiment)
