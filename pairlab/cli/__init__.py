"""pairlab's command line: the same operations as the app, headless.  ``python -m pairlab COMMAND --help``.

One module per group of commands, each with ``add_commands(subparsers)``; every command sets ``func(args) -> int`` and
raises ``UserError`` for anything a user can cause, which ``main`` prints as one sentence (exit status 2).
"""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from . import bench, data, demo, evaluate, experiment, runs, study

GROUPS = (data, runs, evaluate, experiment, bench, study, demo)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pairlab", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in GROUPS:
        group.add_commands(sub)
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
