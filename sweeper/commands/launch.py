"""``sweeper launch FILE``: validate the sweep file, then run every trial with Ray Tune."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("launch", help="run a sweep file on a local Ray instance")
    parser.add_argument("file", type=Path, help="sweep YAML file (see README: the sweep file)")
    parser.add_argument("--storage", type=Path, default=None,
                        help="Ray Tune storage folder (default ./sweeps; the sweep goes in <storage>/<name>)")
    parser.set_defaults(run=run_launch)


def run_launch(args: argparse.Namespace) -> int:
    from sweeper import spec as spec_module
    from sweeper.launch import launch  # Ray is imported only once the file is valid

    spec = spec_module.load(args.file)
    return launch(spec, storage=args.storage)
