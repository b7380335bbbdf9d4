"""Sweeper on an existing Ray cluster: a driver connected with ``--address``, sweeps submitted as
Ray Jobs with ``--cluster``, and the storage checks a cluster of several nodes needs.

Ray's token authentication stays on: when ``RAY_AUTH_MODE`` is unset it is set to ``token``
(never to ``disabled``), and the token is read where Ray 2.60 reads it: ``RAY_AUTH_TOKEN``, then
the file named by ``RAY_AUTH_TOKEN_PATH``, then ``~/.ray/auth_token``.

Storage on several nodes: Ray Tune has every node write its trials' checkpoints straight to the
storage path, so on a cluster with more than one alive node (``ray.nodes()``) the path must be
one that every node sees. A URI (``s3://``, ``gs://``, any scheme but ``file``) is taken as
shared; a file-system path only when the user says so with ``--shared-storage`` (an NFS mount at
the same path on every node). The same holds for a sqlite MLflow store, which trials write to.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shlex
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
TOKEN_HINT = (
    "set RAY_AUTH_TOKEN to the cluster's token, or RAY_AUTH_TOKEN_PATH to a file holding it, "
    "or put it in ~/.ray/auth_token (`ray get-auth-token` on the head node prints it)"
)
CONNECT_TIMEOUT_S = 5.0


# ---------------------------------------------------------------------------------------------
# Token authentication


def keep_token_auth() -> None:
    """Make this process speak Ray's token auth unless the user chose otherwise. Ray reads
    RAY_AUTH_MODE once, when it is imported: call this before ``import ray``."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")


def _auth_as_configured(where: str) -> None:
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    if os.environ.get("RAY_AUTH_MODE") == "token" and not is_token_auth_enabled():
        raise InputError(
            where,
            "Ray was imported in this process before RAY_AUTH_MODE=token was set; "
            "export RAY_AUTH_MODE=token and run again",
        )


def _has_token() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return Path(path).expanduser().is_file() if path else (Path.home() / ".ray" / "auth_token").is_file()


def check_token(where: str) -> None:
    keep_token_auth()
    if os.environ["RAY_AUTH_MODE"] == "token" and not _has_token():
        raise InputError(where, f"Ray token authentication is on but no token was found; {TOKEN_HINT}")


# ---------------------------------------------------------------------------------------------
# --address: a driver on an existing cluster


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.rpartition(":") if ":" in address else (address, "", str(default_port))
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ValueError("expected HOST:PORT")
    return host, int(port)


def _reachable(host: str, port: int) -> str | None:
    """None when a TCP connection opens, else why not."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def connect(address: str) -> None:
    """``ray.init(address=...)`` on an existing cluster; InputError naming ``--address`` when it fails."""
    keep_token_auth()
    if address.startswith(("ray://", "http://", "https://")):
        raise InputError(
            "--address",
            f"{address!r} is not a Ray GCS address: give HOST:PORT of the head node "
            "(port 6379 by default) or `auto`; to submit a Ray Job use --cluster http://HEAD:8265",
        )
    check_token("--address")
    if address != "auto":
        try:
            host, port = _host_port(address, 6379)
        except ValueError:
            raise InputError("--address", f"{address!r} is not HOST:PORT (or `auto`)") from None
        reason = _reachable(host, port)
        if reason:
            raise InputError(
                "--address",
                f"no Ray cluster answers at {host}:{port} ({reason}); give the head "
                "node's HOST:PORT (port 6379 by default), or `auto` on a cluster node",
            )
    import ray

    if ray.is_initialized():
        return
    _auth_as_configured("--address")
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except ConnectionError as exc:
        hint = "" if address == "auto" else f"; the port answers, so check the auth token: {TOKEN_HINT}"
        raise InputError("--address", f"cannot join the Ray cluster at {address} ({exc}){hint}") from None


def alive_nodes() -> int:
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


# ---------------------------------------------------------------------------------------------
# Storage


def is_uri(location: str | os.PathLike | None) -> bool:
    """``s3://bucket/x``-like: a scheme other than ``file``."""
    scheme, sep, _ = str(location or "").partition("://")
    return bool(sep) and scheme.lower() != "file" and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]*", scheme) is not None


def storage_root(storage: str | os.PathLike | None) -> str:
    """Where Ray Tune keeps the sweep: a URI as given, a path made absolute (default ./sweeps)."""
    if is_uri(storage):
        return str(storage).rstrip("/")
    text = str(storage) if storage is not None else ""
    text = text[len("file://") :] if text.startswith("file://") else text
    return str(Path(text).expanduser().resolve()) if text else str((Path.cwd() / "sweeps").resolve())


def check_storage(storage: str | os.PathLike | None, shared: bool, nodes: int, tracking_uri: str | None) -> None:
    """On more than one node, refuse a storage path or sqlite store that only one node can see."""
    if nodes <= 1 or shared:
        return
    if not is_uri(storage):
        raise InputError(
            "--storage",
            (
                f"this Ray cluster has {nodes} nodes and {storage_root(storage)} is a local path: trials on the other "
                "nodes could not write their checkpoints there. Give a path that every node shares: s3://bucket/prefix "
                "(or gs://...), or an NFS folder mounted at the same path on every node, with --shared-storage"
            ),
        )
    if tracking_uri and tracking_uri.startswith("sqlite:"):
        raise InputError(
            "tracking.uri",
            (
                f"this Ray cluster has {nodes} nodes and {tracking_uri} is a file on this node: trials on the other "
                "nodes could not write to it. Use an MLflow server (tracking.uri: http://HOST:5000), or a sqlite "
                "file on an NFS folder that every node mounts, with --shared-storage"
            ),
        )


# ---------------------------------------------------------------------------------------------
# --cluster: Ray Jobs


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
    reason = _reachable(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    if reason:
        raise InputError(
            "--cluster",
            f"no Ray dashboard answers at {url} ({reason}); give the head node's "
            "dashboard URL, http://HEAD:8265 by default",
        )
    _auth_as_configured("--cluster")
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
    runtime_env: dict[str, Any] = {"working_dir": str(working_dir), "excludes": list(EXCLUDES)}
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
