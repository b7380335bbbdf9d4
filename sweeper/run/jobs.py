"""Sweeps as Ray Jobs on a cluster (``--cluster URL``, the dashboard's address): the submission
(the working folder, the driver's command and its storage), and the jobs' status, logs and stop
through Ray's JobSubmissionClient. Token authentication and storage rules: ``sweeper.run.cluster``.
"""

from __future__ import annotations

import re
import secrets
import shlex
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sweeper.run.cluster import TOKEN_HINT, auth_as_configured, check_token, is_uri, keep_token_auth, reachable
from trainables.errors import InputError

# Left out of the folder sent to the cluster (Ray also honours the folder's .gitignore).
EXCLUDES = [
    ".git/",
    ".venv/",
    "venv/",
    "sweeps/",
    "mlruns/",
    "mlartifacts/",
    "mlflow.db",
    "__pycache__/",
    "*.egg-info/",
    ".pytest_cache/",
    "build/",
    "node_modules/",
]


def job_client(url: str):
    """A JobSubmissionClient for the dashboard at ``url``; InputError naming ``--cluster`` otherwise."""
    keep_token_auth()
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    url = url if "://" in url else f"http://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("--cluster", f"{url!r} is not the URL of a Ray dashboard; write http://HEAD:8265")
    check_token("--cluster")
    reason = reachable(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    if reason:
        raise InputError(
            "--cluster",
            f"no Ray dashboard answers at {url} ({reason}); give the head node's "
            "dashboard URL, http://HEAD:8265 by default",
        )
    auth_as_configured("--cluster")
    try:
        return JobSubmissionClient(url)
    except AuthenticationError as exc:
        first = str(exc).splitlines()[0]
        raise InputError("--cluster", f"the Ray cluster at {url} refused this client ({first}); {TOKEN_HINT}") from None
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError("--cluster", f"{url} is not a reachable Ray Jobs server ({exc})") from None


def job_call(what: str, job_id: str, call):
    try:
        return call()
    except RuntimeError as exc:
        if "does not exist" in str(exc) or "404" in str(exc):
            raise InputError(
                "JOB", f"no job {job_id!r} on this cluster (`sweeper status --cluster URL` lists them)"
            ) from None
        raise InputError("--cluster", f"cannot {what} job {job_id!r}: {exc}") from None


JOB_STOP_GRACE_S = 60


def submission_plan(spec_path: Path, working_dir: Path, storage: str, shared: bool) -> dict[str, Any]:
    """Entrypoint and runtime_env of the Ray Job that runs ``spec_path`` (validated by the caller)."""
    import sweeper
    import trainables

    working_dir = working_dir.resolve()
    spec_path = spec_path.resolve()
    if not spec_path.is_relative_to(working_dir):
        raise InputError(
            str(spec_path),
            f"the sweep file must lie inside the folder sent to the cluster "
            f"({working_dir}); run from the project folder or pass --working-dir",
        )
    runtime_env: dict[str, Any] = {
        "working_dir": str(working_dir),
        "excludes": list(EXCLUDES),
        # `ray job stop` sends SIGTERM, then SIGKILL after this many seconds (Ray's default: 3). The
        # driver needs the time to stop its trials, save Tune's state and close the MLflow runs.
        "env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": str(JOB_STOP_GRACE_S)},
    }
    packages = [Path(sweeper.__file__).parent, Path(trainables.__file__).parent]
    if not all(p.resolve().is_relative_to(working_dir) for p in packages):
        runtime_env["py_modules"] = [str(p) for p in packages]  # this client's Sweeper, not the image's
    command = [
        "python",
        "-m",
        "sweeper.cli",
        "launch",
        spec_path.relative_to(working_dir).as_posix(),
        "--address",
        "auto",
        "--storage",
        storage,
    ]
    if shared:
        command.append("--shared-storage")
    return {"entrypoint": shlex.join(command), "runtime_env": runtime_env}


def submit(spec, url: str, storage: str | None, shared: bool, working_dir: Path | None) -> str:
    """Submit the validated sweep ``spec`` as a Ray Job; returns its submission id."""
    if storage is None:
        raise InputError(
            "--storage",
            "with --cluster, say where the cluster keeps the sweep: an absolute path on "
            "the cluster (--shared-storage if every node mounts it) or s3://bucket/prefix",
        )
    if not is_uri(storage) and not Path(storage).expanduser().is_absolute():
        raise InputError(
            "--storage",
            f"{storage!r} is relative; on the cluster it would land in the job's "
            "temporary copy of this folder. Give an absolute path or a URI",
        )
    if is_uri(storage) and "@" in storage.split("://", 1)[1].split("/", 1)[0]:
        raise InputError(
            "--storage",
            "credentials in the storage URI would be kept in the Ray Job's entrypoint, which the "
            "cluster lists to anyone; give the cluster's nodes the AWS_* variables instead",
        )
    if spec.tracking.uri is None:
        raise InputError(
            "tracking.uri",
            "with --cluster the default ./mlflow.db would be written inside the job's "
            "temporary copy of this folder; set tracking.uri to an MLflow server "
            "(http://HOST:5000) or to sqlite:////absolute/path/mlflow.db on the cluster",
        )
    plan = submission_plan(spec.path, working_dir or Path.cwd(), storage, shared)
    client = job_client(url)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec.name).strip("-") or "sweep"
    submission_id = f"sweeper-{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    try:
        return client.submit_job(submission_id=submission_id, metadata={"sweeper.sweep": spec.name}, **plan)
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputError("--cluster", f"the cluster at {url} did not accept the job: {exc}") from None


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def job_row(job) -> dict[str, Any]:
    return {
        "job": job.submission_id or job.job_id,
        "status": str(job.status.value),
        "entrypoint": job.entrypoint,
        "start": _when(job.start_time),
        "end": _when(job.end_time),
        "message": job.message or "",
        "sweep": (job.metadata or {}).get("sweeper.sweep"),
    }


def show_status(url: str, job_id: str | None = None, as_json: bool = False) -> int:
    """``sweeper status --cluster URL [JOB]``: the cluster's Ray Jobs, or one job."""
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    client = job_client(url)
    if job_id:
        rows = [job_row(job_call("read", job_id, lambda: client.get_job_info(job_id)))]
    else:
        jobs = [j for j in client.list_jobs() if j.submission_id]  # drivers started by hand have none
        rows = [job_row(j) for j in sorted(jobs, key=lambda j: j.start_time or 0)]
    if as_json:
        print(json.dumps(rows[0] if job_id else rows, indent=2))
        return 0
    console = Console()
    if job_id:
        for key, value in rows[0].items():
            console.print(
                f"[bold]{key}[/bold]: {escape(str(value)) if value not in (None, '') else '-'}", highlight=False
            )
        return 0
    table = Table("status", "start", "end", "entrypoint")
    table.add_column("job", no_wrap=True)  # whole, to copy into logs/stop
    for row in rows:
        table.add_row(row["status"], row["start"], row["end"], row["entrypoint"], row["job"])
    console.print(table if rows else f"no jobs submitted to {url} yet")
    return 0
