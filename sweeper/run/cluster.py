"""Sweeper on an existing Ray cluster: a driver connected with ``--address``, token authentication,
and the storage checks a cluster of several nodes needs (``sweeper.run.jobs`` submits sweeps as
Ray Jobs with ``--cluster``).

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
import socket
from pathlib import Path

from trainables.errors import InputError

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


def auth_as_configured(where: str) -> None:
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


def reachable(host: str, port: int) -> str | None:
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
        reason = reachable(host, port)
        if reason:
            raise InputError(
                "--address",
                f"no Ray cluster answers at {host}:{port} ({reason}); give the head "
                "node's HOST:PORT (port 6379 by default), or `auto` on a cluster node",
            )
    import ray

    if ray.is_initialized():
        return
    auth_as_configured("--address")
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
