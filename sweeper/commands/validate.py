"""``sweeper validate FILE``: check a sweep file completely, without starting anything."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("validate", help="check a sweep file and count its trials; starts nothing")
    parser.add_argument("file", help="the sweep YAML file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sweeper.spec.concurrency import sqlite_writers_warning
    from sweeper.spec.grid import trial_count
    from sweeper.spec.loading import load  # pydantic and the checks; `--help` needs neither

    spec = load(args.file)
    warning = sqlite_writers_warning(spec)
    if warning:  # advice only: the exit code stays 0
        print(f"sweeper: warning: {args.file}: {warning}", file=sys.stderr)
    trials = trial_count(spec)
    references = f", references {', '.join(spec.reference)}" if spec.reference else ""
    print(
        f"{args.file}: valid (method {spec.method or ' | '.join(spec.methods)}{references}, "
        f"searcher {spec.searcher}, {trials} trial{'s' if trials != 1 else ''})"
    )
    return 0
