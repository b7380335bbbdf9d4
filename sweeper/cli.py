"""The ``sweeper`` command line: ``main(argv)`` is callable from tests.

Bad input raises :class:`trainables.errors.InputError`; it is printed as one line on stderr and the
exit code is 2, before any compute starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sweeper.commands import confirm as confirm_command
from sweeper.commands import jobs as jobs_command
from sweeper.commands import launch as launch_command
from sweeper.commands import methods as methods_command
from sweeper.commands import report as report_command
from sweeper.commands import resume as resume_command
from sweeper.commands import status as status_command
from sweeper.commands import ui as ui_command
from sweeper.commands import validate as validate_command
from sweeper.commands import zoo as zoo_command
from trainables.errors import InputError

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweeper", description="Hyperparameter sweeps for robust fine-tuning of CLIP models."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    zoo_command.add_parser(commands)
    launch_command.add_parser(commands)
    resume_command.add_parser(commands)
    confirm_command.add_parser(commands)
    methods_command.add_parser(commands)
    validate_command.add_parser(commands)
    report_command.add_parser(commands)
    status_command.add_parser(commands)
    jobs_command.add_parsers(commands)
    ui_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except InputError as error:
        print(f"sweeper: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # before a sweep started (a running one handles its own Ctrl-C)
        print("sweeper: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
