"""``sweeper launch FILE``: validate the sweep file, then run every trial with Ray Tune.

Where the driver runs: here on an embedded Ray (default); here against an existing cluster
(``--address auto|HOST:PORT``); or on the cluster itself as a Ray Job (``--cluster URL``), which
returns once the job is submitted. The file is validated here first in every case.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweeper.spec.schema import SweepSpec


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("launch", help="run a sweep file (local Ray, a Ray cluster, or a Ray Job)")
    parser.add_argument("file", type=Path, help="sweep YAML file (see README: the sweep file)")
    parser.add_argument(
        "--storage",
        default=None,
        metavar="PATH|URI",
        help="Ray Tune storage (default ./sweeps; the sweep goes in <storage>/<name>); "
        "on a cluster of several nodes: s3://..., gs://..., or a shared path with --shared-storage",
    )
    parser.add_argument(
        "--shared-storage",
        action="store_true",
        help="the --storage path (and a sqlite tracking.uri) is on a file system that every node "
        "mounts at the same path (NFS)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--address",
        default=None,
        metavar="auto|HOST:PORT",
        help="run the driver here against an existing Ray cluster (its GCS address; `auto` on a "
        "cluster node); Ray token auth stays on (RAY_AUTH_TOKEN or ~/.ray/auth_token)",
    )
    where.add_argument(
        "--cluster",
        default=None,
        metavar="URL",
        help="submit the sweep as a Ray Job to the cluster's dashboard (http://HEAD:8265), print "
        "the job id and return; see sweeper status/logs/stop --cluster",
    )
    parser.add_argument(
        "--working-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --cluster: the folder sent with the job (default: the current folder; it must contain FILE)",
    )
    parser.set_defaults(run=run_launch)


def _warn_sqlite_writers(spec: SweepSpec, args: argparse.Namespace) -> None:
    """Warn (stderr; the launch goes on) when more trials may log at once to sqlite than it holds.
    Unset max_concurrent is judged from this machine's CPUs, so not for a sweep run on a cluster."""
    from sweeper.spec.concurrency import sqlite_writers_warning

    if (args.address or args.cluster) and spec.max_concurrent is None:
        return
    warning = sqlite_writers_warning(spec)
    if warning:
        print(f"sweeper: warning: {args.file}: {warning}", file=sys.stderr)


def run_launch(args: argparse.Namespace) -> int:
    from sweeper.run.heavy_imports import heavy_imports

    if args.address or args.cluster:
        from sweeper.run.cluster import keep_token_auth

        keep_token_auth()  # before Ray is imported: Ray reads RAY_AUTH_MODE once
    with heavy_imports():  # the checks' imports, frozen once done: later collections skip them
        from sweeper.spec import loading

        spec = loading.load(args.file)  # nothing is started or submitted before the file is valid
    _warn_sqlite_writers(spec, args)
    if args.working_dir is not None and not args.cluster:
        from trainables.errors import InputError

        raise InputError("--working-dir", "only applies with --cluster")
    if args.cluster:
        from sweeper.run import jobs

        job_id = jobs.submit(spec, args.cluster, args.storage, args.shared_storage, args.working_dir)
        url = args.cluster
        print(job_id)
        print(
            f"submitted sweep {spec.name} as Ray Job {job_id}; follow it with\n"
            f"  sweeper status {job_id} --cluster {url}\n  sweeper logs {job_id} --cluster {url} --follow\n"
            f"  sweeper stop {job_id} --cluster {url}"
        )
        return 0
    with heavy_imports():  # Ray is imported only once the file is valid; Ray Tune, Optuna, MLflow
        from sweeper.run.driving import ensure_ray
        from sweeper.run.launch import launch

    if args.address:
        from sweeper.run import cluster
        from sweeper.tracking.uri import resolve_uri

        ensure_ray(args.address)
        cluster.check_storage(args.storage, args.shared_storage, cluster.alive_nodes(), resolve_uri(spec.tracking.uri))
    # Ctrl-C, and the SIGTERM of `sweeper stop` / `ray job stop`, stop the sweep cleanly in launch().
    return launch(spec, storage=args.storage)
