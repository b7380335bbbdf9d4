"""``sweeper logs JOB --cluster URL [--follow]`` and ``sweeper stop JOB --cluster URL``: a sweep
submitted with ``sweeper launch FILE --cluster URL`` is a Ray Job; these read and end it."""

from __future__ import annotations

import argparse
import sys

CLUSTER_HELP = (
    "the Ray cluster's dashboard URL (http://HEAD:8265); the Ray auth token comes from RAY_AUTH_TOKEN, "
    "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    logs = commands.add_parser("logs", help="print the output of a sweep submitted with launch --cluster")
    logs.add_argument("job", metavar="JOB", help="the job id that launch --cluster printed")
    logs.add_argument("--cluster", required=True, metavar="URL", help=CLUSTER_HELP)
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    logs.set_defaults(run=run_logs)
    stop = commands.add_parser("stop", help="stop a sweep submitted with launch --cluster")
    stop.add_argument("job", metavar="JOB", help="the job id that launch --cluster printed")
    stop.add_argument("--cluster", required=True, metavar="URL", help=CLUSTER_HELP)
    stop.set_defaults(run=run_stop)


def run_logs(args: argparse.Namespace) -> int:
    """The driver's output so far, or followed until the job ends."""
    import asyncio

    from sweeper.run.jobs import job_call, job_client

    client, job_id = job_client(args.cluster), args.job
    if not args.follow:
        sys.stdout.write(job_call("read the logs of", job_id, lambda: client.get_job_logs(job_id)))
        return 0
    job_call("read", job_id, lambda: client.get_job_info(job_id))

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    try:
        asyncio.run(tail())
    except KeyboardInterrupt:
        print(
            f"\nstopped following; the job goes on (sweeper stop {job_id} --cluster {args.cluster} ends it)",
            file=sys.stderr,
        )
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """Ask Ray to stop the job: SIGTERM to its driver (which closes the sweep's MLflow runs), later SIGKILL."""
    from sweeper.run.jobs import job_call, job_client

    client, job_id = job_client(args.cluster), args.job
    stopped = job_call("stop", job_id, lambda: client.stop_job(job_id))
    status = job_call("read", job_id, lambda: client.get_job_info(job_id)).status.value
    print(f"job {job_id}: " + ("stop requested" if stopped else f"already ended ({status})"))
    return 0
