"""``python -m pairlab study ...``: the user-study operations, headless.

The lab's CLI calls ``add_commands(subparsers)`` once; every command sets ``func(args) -> int`` and raises
``UserError`` for anything a user can cause (pairlab's ``main`` prints it as one sentence).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from .. import lab
from ..errors import UserError


def _fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def print_results(res: dict) -> None:
    print(f"study {res['study_id']} ({res['title']}, {res['state']}): {res['n_participants']} participants, "
          f"{res['n_votes']} votes ({res['n_preference_votes']} counted for preferences)")
    print(f"question: {res['question']}")
    matrix = res["matrix"]
    widths = [max(len(str(row[k])) for row in matrix) for k in range(len(matrix[0]))]
    for row in matrix:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print("\npairs (row preferred over column among decisive votes):")
    for r in res["pairs"]:
        if r["row_id"] < r["column_id"] or r["column_id"] == "source":
            print(f"  {r['row']} vs {r['column']}: {r['row_wins']}/{r['decisive']} = {_fmt(r['rate'])} "
                  f"[{_fmt(r['ci_low'], 2)}, {_fmt(r['ci_high'], 2)}]  p = {_fmt(r['p_value'], 4)}  "
                  f"both {_fmt(r['both_rate'], 2)}  neither {_fmt(r['neither_rate'], 2)}")
    print("\nBradley-Terry ranking (log-strength, bootstrap 95% interval over participants):")
    for r in res["bradley_terry"]:
        print(f"  {r['rank']}. {r['run']}: {_fmt(r['score'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]")
    print(f"\nconsistency on repeated trials: {_fmt(res['consistency'])} ({res['repeats']} repeats); "
          f"catch-trial pass rate: {_fmt(res['catch_pass_rate'])} ({res['catch_trials']} catch trials); "
          f"median time per trial: {_fmt(res['median_client_ms'] / 1000, 2)} s")
    agree = res["agreement"]
    print(f"agreement: Krippendorff's alpha (nominal) {_fmt(agree['alpha'])} over {agree['shared_trials']} trials "
          f"answered by two or more participants")
    settings = res.get("settings") or {}
    if settings.get("platform", "none") != "none" or settings.get("completion_code"):
        print(f"hand-off: {settings.get('platform')}" + (f", completion code {settings['completion_code']}"
                                                         if settings.get("completion_code") else ""))
    for w in res["warnings"]:
        print(f"warning: {w}")


def cmd_list(args) -> int:
    rows = lab.list_studies()
    if not rows:
        print("no studies yet")
    for r in rows:
        print(f"{r['study_id']}  {r['state']:<6}  {r['participants']:>4} participants ({r['finished']} finished)  "
              f"{r['votes']:>6} votes  {r['title']}  [{r['runs']}]")
    return 0


def cmd_results(args) -> int:
    print_results(lab.study_results(args.study, bootstrap=args.bootstrap, min_catch_pass=args.min_catch_pass))
    return 0


def cmd_export(args) -> int:
    out = Path(args.out or f"study-{args.study}-results")
    paths = lab.export_study(args.study, out, bootstrap=args.bootstrap, min_catch_pass=args.min_catch_pass)
    print(f"Exported study {args.study} to {out}: " + ", ".join(paths))
    return 0


def cmd_state(args) -> int:
    lab.load_plan(args.study)
    lab.set_study_state(args.study, "closed" if args.action == "close" else "open")
    print(f"study {args.study} is now {'closed' if args.action == 'close' else 'open'}")
    return 0


def cmd_freeze(args) -> int:
    if bool(args.runs) == bool(args.folders):
        raise UserError("Give either --runs or --folders (with --source-dir).")
    if args.runs:
        inputs = lab.candidates_from_runs(args.runs, args.labels, checkpoint=args.checkpoint)
    else:
        if not args.source_dir:
            raise UserError("--folders needs --source-dir (the source images, named like the outputs).")
        pairs = [f.split("=", 1) for f in args.folders]
        if any(len(p) != 2 for p in pairs):
            raise UserError("Each --folders entry must look like label=folder.")
        inputs = lab.candidates_from_folders(dict(pairs), args.source_dir, args.truth_dir)
    design = lab.StudyDesign(title=args.title, task=args.task, question=args.question or lab.QUESTIONS.get(args.task, ""),
                         sample_count=args.samples, sample_seed=args.seed, comparisons=tuple(args.comparisons),
                         trials_per_participant=args.trials, repeats=args.repeats, catch_trials=args.catch, seed=args.seed)
    sid = lab.freeze_study(design, inputs)
    print(f"Frozen study {sid}; participant link: {lab.study_url(sid)}")
    return 0


def cmd_handoff(args) -> int:
    if args.platform is None and args.code is None:
        s = lab.study_settings(args.study)
    else:
        current = lab.study_settings(args.study)
        s = lab.set_study_settings(args.study, args.platform or current["platform"],
                                   args.code if args.code is not None else current["completion_code"])
    print(f"study {args.study} hands participants off to {s['platform']}"
          + (f" with completion code {s['completion_code']}" if s["completion_code"] else ""))
    return 0


def cmd_serve(args) -> int:
    return lab.serve_participants(args.host, args.port)


def cmd_bench(args) -> int:
    from .. import bench

    return bench.votes(participants=args.participants, votes=args.votes)


def add_commands(subparsers) -> argparse.ArgumentParser:
    """Add ``study {list,results,export,freeze,close,open,handoff,serve,bench}`` to pairlab's top-level subparsers."""
    s = subparsers.add_parser("study", help="user studies: freeze, serve, results, export",
                              description="Blind preference studies (Table 6 of Ginger et al., Implicit Pairs for Boosting Unpaired "
                                          "Image-to-Image Translation).")
    sub = s.add_subparsers(dest="study_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("list", help="list the frozen studies with their vote counts")
    p.set_defaults(func=cmd_list)

    for name, fn, text in (("results", cmd_results, "print Table 6, the Bradley-Terry ranking and consistency"),
                           ("export", cmd_export, "write votes.csv, table6.csv/.tex, pairs.csv, bradley_terry.csv ...")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("study", help="the study id")
        p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of participants (default 1000)")
        p.add_argument("--min-catch-pass", type=float, default=None,
                       help="drop participants whose catch-trial pass rate is below this (default: keep all)")
        if name == "export":
            p.add_argument("--out", default=None, help="output folder (default ./study-STUDY-results)")
        p.set_defaults(func=fn)

    for action in ("close", "open"):
        p = sub.add_parser(action, help=f"{action} a study to new participants and votes")
        p.add_argument("study")
        p.set_defaults(func=cmd_state, action=action)

    p = sub.add_parser("freeze", help="freeze a study from runs (evaluation cache) or from image folders")
    p.add_argument("--runs", nargs="+", default=None, help="run folders (2 to 6)")
    p.add_argument("--labels", nargs="+", default=None, help="a label per run (default: the runs' short names)")
    p.add_argument("--checkpoint", default="latest")
    p.add_argument("--folders", nargs="+", default=None, help="label=folder of output images, 2 to 6")
    p.add_argument("--source-dir", default=None, help="the source images (named like the outputs)")
    p.add_argument("--truth-dir", default=None, help="ground-truth images, for catch trials")
    p.add_argument("--title", default="Eyeglasses removal study")
    p.add_argument("--task", default="eyeglasses", choices=["eyeglasses", "smile", "folders"])
    p.add_argument("--question", default=None)
    p.add_argument("--samples", type=int, default=20, help="test samples drawn with --seed (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--comparisons", nargs="+", default=["pairs", "vs_source"], choices=["pairs", "vs_source"])
    p.add_argument("--trials", type=int, default=0, help="trials per participant (0 = all)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--catch", type=int, default=2)
    p.set_defaults(func=cmd_freeze)

    p = sub.add_parser("handoff", help="show or set the Prolific / MTurk hand-off (platform, completion code)",
                       description="Show or set how participants are handed back: prolific redirects to Prolific's "
                                   "completion page with the code; mturk shows the code and posts the assignment.")
    p.add_argument("study")
    p.add_argument("--platform", choices=["none", "prolific", "mturk"], default=None)
    p.add_argument("--code", default=None, help="the study's completion code ('' to clear)")
    p.set_defaults(func=cmd_handoff)

    p = sub.add_parser("serve", help="serve only the participant pages")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7861)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bench", help="load benchmark of the vote server (same as 'bench votes')")
    p.add_argument("--participants", type=int, default=50)
    p.add_argument("--votes", type=int, default=40)
    p.set_defaults(func=cmd_bench)
    return s
