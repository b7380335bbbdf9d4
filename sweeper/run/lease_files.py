"""The driver lease as a file, ``<folder>/driver.lease``, in a local or NFS storage folder.

Atomicity, also on NFS v3+: a lease is written whole to a temporary file and published with
``link()``, which fails when the name exists (a lost NFS reply shows in the link count). A stale
lease is taken over under a claim file named after its token, published the same way: of two
takers exactly one creates the claim, checks the lease still holds that token and renames its own
over it. No ``flock``: NFS mounts do not always honour it across hosts.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sweeper.run.lease_record import is_lease, judge, unreadable

LEASE_FILE = "driver.lease"


def read_lease(path: Path) -> dict[str, Any] | None:
    """The lease at ``path``, or None when there is none. An unreadable one (never written by a
    driver: they publish whole files) counts as another machine's, its file time as heartbeat."""
    try:
        text = path.read_text(encoding="utf-8")
        stat = path.stat()
    except FileNotFoundError:
        return None
    try:
        lease = json.loads(text)
        if is_lease(lease):
            return lease
    except ValueError:
        pass
    return unreadable(f"{stat.st_ino}-{stat.st_mtime_ns}", stat.st_mtime)


def _temporary(path: Path, record: dict[str, Any]) -> str:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(record, stream, indent=1)
        stream.flush()
        os.fsync(stream.fileno())
    os.chmod(tmp, 0o644)
    return tmp


def publish(path: Path, record: dict[str, Any]) -> bool:
    """Create ``path`` holding ``record`` unless it exists: atomic, readers never see a partial file."""
    tmp = _temporary(path, record)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        # On NFS a retried link whose first reply was lost fails although it worked: the
        # temporary file's link count says which.
        return os.stat(tmp).st_nlink == 2
    finally:
        os.unlink(tmp)


class FileLeaseStore:
    """The lease file of one sweep's storage folder (see :class:`sweeper.run.lease.DriverLease`)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.path = Path(folder), Path(folder) / LEASE_FILE
        self.where = str(self.path)

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def found(self) -> bool:
        """Whether the sweep's folder is on this machine at all."""
        return self.folder.is_dir()

    def create(self, record: dict[str, Any]) -> bool:
        return publish(self.path, record)

    def read(self) -> dict[str, Any] | None:
        return read_lease(self.path)

    def replace(self, seen: dict[str, Any], record: dict[str, Any]) -> bool:
        """Write ``record`` over the lease (``seen`` was read just before; a rename cannot check it:
        takers hold :meth:`claim` first)."""
        tmp = _temporary(self.path, record)
        try:
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def delete(self, seen: dict[str, Any]) -> None:
        self.path.unlink()

    @contextlib.contextmanager
    def claim(self, seen: dict[str, Any], record: dict[str, Any]) -> Iterator[bool]:
        """Hold the right to take the lease ``seen`` over: True for exactly one of several takers."""
        claims = self._claim(str(seen["token"]), record)
        try:
            yield bool(claims)
        finally:
            for claim in claims:
                with contextlib.suppress(OSError):
                    claim.unlink()

    def _claim(self, token: str, record: dict[str, Any], depth: int = 0) -> list[Path]:
        """The claim files this driver now holds to take over the lease ``token``; empty when
        another taker holds it. A claim whose taker died before finishing is stale like a lease
        (it is renewed never: it lives milliseconds), and is claimed in turn."""
        claim = self.folder / f"{LEASE_FILE}.claim-{token}"
        if publish(claim, record):
            return [claim]
        held = read_lease(claim)
        if held is None or depth > 8 or judge(held) is None:
            return []
        inner = self._claim(str(held["token"]), record, depth + 1)
        return [*inner, claim] if inner else []
