"""``sweeper resume NAME``: finish a sweep whose driver died, from its storage folder."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "resume",
        help="finish a sweep whose driver died: finished trials are kept, unfinished ones resume "
        "from their last checkpoint, MLflow runs are reattached",
    )
    parser.add_argument("name", metavar="NAME", help="the sweep's name (its YAML `name:`)")
    parser.add_argument(
        "--storage", default=None, metavar="PATH", help="the storage the sweep was launched with (default ./sweeps)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sweeper.run.heavy_imports import heavy_imports

    with heavy_imports():  # Ray Tune's, Optuna's and MLflow's imports, frozen once done
        from sweeper.run.resume import resume

    return resume(args.name, storage=args.storage)
