"""MLflow tracking URIs: the default store, and the checks before a sweep writes to one (the file
store, missing folders, dead servers) or a command reads one (a store that is not there).

Imports nothing heavy: `sweeper status` and the spec checks use it without loading MLflow.
"""

from __future__ import annotations

import http.client
import re
import urllib.error
import urllib.request
from pathlib import Path

from trainables.errors import InputError

FILE_STORE = "MLflow 3.17 refuses the file store; use sqlite:///path.db or http(s)://host:port"


def resolve_uri(uri: str | None) -> str:
    """The tracking URI; by default a sqlite file in the working directory."""
    return uri or f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def redact_uri(uri: str) -> str:
    """The URI with any password replaced by ***, for messages and logs."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*:)[^/@]*@", r"\1***@", uri)


def check_tracking_uri(uri: str | None, field: str = "tracking.uri") -> None:
    """Reject MLflow tracking URIs that cannot work: the file store, missing folders, dead servers."""
    if uri is None:
        return  # the launcher uses sqlite:///<cwd>/mlflow.db
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme == "file" or uri.startswith("file:"):
        raise InputError(field, FILE_STORE)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise InputError(field, f"{uri!r} names no database file; write sqlite:///path/to/mlflow.db")
        try:
            database = Path(rest[1:]).expanduser()
        except RuntimeError:  # ~name/ of a user that does not exist
            raise InputError(field, f"{uri!r}: cannot expand the home folder in {rest[1:]!r}") from None
        if not database.parent.is_dir():
            raise InputError(field, f"the folder {str(database.parent)!r} of the sqlite database does not exist")
        return
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=3) as response:  # noqa: S310
                if response.status != 200:
                    raise OSError(f"HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            raise InputError(
                field, f"tracking server {redact_uri(uri)} is unreachable (HTTP {exc.code} on /health)"
            ) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:  # HTTPException: http://host:50O0
            reason = getattr(exc, "reason", None) or exc
            raise InputError(field, f"tracking server {redact_uri(uri)} is unreachable ({reason})") from None
        return
    raise InputError(field, f"unsupported tracking URI scheme {scheme!r}; use sqlite:///path.db or http(s)://host:port")


def check_readable_uri(uri: str) -> str:
    """Refuse URIs this MLflow cannot read, before touching them; returns the URI."""
    scheme = uri.split(":", 1)[0] if "://" in uri else ""
    if scheme in ("", "file"):
        # MLflow 3.17 refuses the file store; a bare path is almost always meant as a sqlite file.
        raise InputError(
            "--tracking-uri",
            f"{uri!r} is a file store, which MLflow 3.17 refuses; "
            "use sqlite:////abs/path/mlflow.db or http://host:5000",
        )
    if scheme == "sqlite":
        path = uri[len("sqlite:///") :].split("?", 1)[0] if uri.startswith("sqlite:///") else ""
        # Reading must not create an empty database as a side effect (a typo would look like "no sweeps").
        if path and path != ":memory:" and not Path(path).is_file():
            raise InputError(
                "--tracking-uri",
                f"no MLflow store at {path} (from {uri}); run `sweeper launch` first or pass the right --tracking-uri",
            )
    return uri
