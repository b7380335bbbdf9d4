"""One driver per sweep: the lease ``<storage>/<name>/driver.lease``.

A driver (``launch``, ``resume``) holds the lease while it runs: a JSON file naming its host, pid,
the pid's start time, a unique token, and a heartbeat that a daemon thread renews every
``HEARTBEAT_S`` seconds. It is deleted when the driver exits, normally or by an exception.

Atomicity, also on NFS v3+: a lease is written whole to a temporary file and published with
``link()``, which fails when the name exists (a lost NFS reply shows in the link count). A stale
lease is taken over under a claim file named after its token, published the same way: of two
takers exactly one creates the claim, checks the lease still holds that token and renames its own
over it. No ``flock``: NFS mounts do not always honour it across hosts.

Stale means: on the same machine (host name, boot id and pid namespace all match) the process is
gone or its pid now belongs to a younger process; on another machine the heartbeat is older than
the lease's ``stale_after_s`` (``STALE_AFTER_S``; clocks must agree to well within it). A live
process on the same machine keeps its lease however old its heartbeat: it may be stuck, but
taking over would run two drivers. A driver that finds its lease taken over (it was judged stale
while alive, e.g. suspended) exits at once, so that two drivers never run past one heartbeat.

The lease lives in a local or NFS storage folder only: with URI storage (``s3://...``) none is held.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainables.errors import InputError

LEASE_FILE = "driver.lease"
HEARTBEAT_S = 5.0  # how often the driver renews its heartbeat
STALE_AFTER_S = 60.0  # a heartbeat older than this (another machine's driver) is stale
_ATTEMPTS = 200  # acquisition rounds (50 ms apart) before giving up on a contended lease


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    text = _read_text(f"/proc/{pid}/stat")
    if not text:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def machine() -> dict[str, Any]:
    """What identifies this machine and pid namespace: a pid is only comparable within both."""
    try:
        pidns: str | None = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = None
    return {"host": socket.gethostname(), "boot": _read_text("/proc/sys/kernel/random/boot_id"), "pidns": pidns}


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
        if isinstance(lease, dict) and lease.get("token") and isinstance(lease.get("heartbeat"), (int, float)):
            return lease
    except ValueError:
        pass
    return {
        "token": f"unreadable-{stat.st_ino}-{stat.st_mtime_ns}",
        "host": "?",
        "pid": "?",
        "heartbeat": stat.st_mtime,
    }


def judge(lease: dict[str, Any], now: float | None = None) -> str | None:
    """Why ``lease`` is stale, or None while its driver may be alive."""
    here = machine()
    if all(lease.get(key) == here[key] for key in here) and isinstance(lease.get("pid"), int):
        pid = lease["pid"]
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "its process is gone"
        except PermissionError:
            pass  # another user's process: it exists
        started = lease.get("pid_start")
        if started is not None and start_ticks(pid) not in (None, started):
            return "its pid now belongs to another process"
        return None
    age = (now or time.time()) - float(lease.get("heartbeat", 0))
    limit = float(lease.get("stale_after_s", STALE_AFTER_S))
    return f"its last heartbeat is {age:.0f} s old (stale after {limit:.0f} s)" if age > limit else None


def describe(lease: dict[str, Any], now: float | None = None) -> str:
    """``pid 1234 on host h1, last heartbeat 3 s ago``"""
    age = (now or time.time()) - float(lease.get("heartbeat", 0))
    return f"pid {lease.get('pid')} on host {lease.get('host')}, last heartbeat {age:.0f} s ago"


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


def _replace(path: Path, record: dict[str, Any]) -> None:
    tmp = _temporary(path, record)
    try:
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise


def _exit_lost(message: str) -> None:
    print(f"sweeper: {message}; this driver stops now", file=sys.stderr, flush=True)
    os._exit(1)  # no clean-up: the MLflow runs and the experiment folder now belong to the other driver


class DriverLease:
    """The lease of sweep ``name`` in ``folder``: :meth:`acquire`, then :meth:`release` (or ``with``)."""

    def __init__(
        self,
        folder: Path,
        name: str,
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
        on_lost: Callable[[str], None] = _exit_lost,
    ) -> None:
        self.folder, self.name, self.path = Path(folder), name, Path(folder) / LEASE_FILE
        self.heartbeat_s, self.on_lost = heartbeat_s, on_lost
        now = time.time()
        self.record: dict[str, Any] = {
            "sweep": name,
            **machine(),
            "pid": os.getpid(),
            "pid_start": start_ticks(os.getpid()),
            "token": uuid.uuid4().hex,
            "started": now,
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "heartbeat": now,
            "heartbeat_every_s": heartbeat_s,
            "stale_after_s": stale_after_s,
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease, or a stale one over (saying so on stderr); InputError while it is live."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return self._acquire()
        except OSError as error:
            raise InputError(str(self.path), f"cannot write the driver lease: {error.strerror or error}") from None

    def _acquire(self) -> None:
        for _ in range(_ATTEMPTS):
            self.record["heartbeat"] = time.time()
            if publish(self.path, self.record):
                return self._start()
            lease = read_lease(self.path)
            if lease is None:
                continue  # released meanwhile: try again at once
            why = judge(lease)
            if why is None:
                raise InputError(
                    f"sweep {self.name!r}",
                    f"a driver is already running it: {describe(lease)} (lease {self.path}). "
                    f"Wait for it to end, or stop it and run `sweeper resume {self.name}`",
                )
            if self._take_over(lease, why):
                return self._start()
            time.sleep(0.05)  # another taker holds the claim: look again once it is done
        raise InputError(f"sweep {self.name!r}", f"could not take the lease {self.path}: other drivers keep it busy")

    def _take_over(self, lease: dict[str, Any], why: str) -> bool:
        claims = self._claim(str(lease["token"]))
        if not claims:
            return False
        try:
            current = read_lease(self.path)
            if current is None or current["token"] != lease["token"]:
                return False  # replaced or released since it was read: start again
            old = f"pid {lease.get('pid')} on host {lease.get('host')}"
            print(f"sweeper: sweep {self.name}: taking over the stale lease of {old} ({why})", file=sys.stderr)
            self.record["heartbeat"] = time.time()
            _replace(self.path, self.record)
            return True
        finally:
            for claim in claims:
                with contextlib.suppress(OSError):
                    claim.unlink()

    def _claim(self, token: str, depth: int = 0) -> list[Path]:
        """The claim files this driver now holds to take over the lease ``token``; empty when
        another taker holds it. A claim whose taker died before finishing is stale like a lease
        (it is renewed never: it lives milliseconds), and is claimed in turn."""
        claim = self.folder / f"{LEASE_FILE}.claim-{token}"
        if publish(claim, self.record):
            return [claim]
        held = read_lease(claim)
        if held is None or depth > 8 or judge(held) is None:
            return []
        inner = self._claim(str(held["token"]), depth + 1)
        return [*inner, claim] if inner else []

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="sweeper-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                current = read_lease(self.path)
                if current is not None and current["token"] != self.record["token"]:
                    lost = f"sweep {self.name}: the lease was taken over by {describe(current)}"
                    return self.on_lost(lost)
                self.record["heartbeat"] = time.time()
                if current is None:  # deleted by hand: publish it again unless someone else did
                    if not publish(self.path, self.record):
                        return self.on_lost(f"sweep {self.name}: the lease {self.path} was deleted and taken")
                else:
                    _replace(self.path, self.record)
            except OSError:
                continue  # e.g. an NFS hiccup: the next beat tries again, well within the timeout

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still this driver's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(OSError):
            current = read_lease(self.path)
            if current is not None and current["token"] == self.record["token"]:
                self.path.unlink()

    def __enter__(self) -> DriverLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def driver_state(folder: Path) -> dict[str, Any]:
    """What ``sweeper status`` shows: whether a driver holds the lease in ``folder`` and is alive."""
    if not folder.is_dir():  # e.g. a sweep launched on another machine, its storage not shared here
        return {"alive": None, "lease": None}
    lease = read_lease(folder / LEASE_FILE)
    if lease is None:
        return {"alive": False, "lease": None}
    why = judge(lease)
    age = time.time() - float(lease.get("heartbeat", 0))
    found = {k: lease.get(k) for k in ("host", "pid", "started_utc")}
    return {"alive": why is None, "lease": str(folder / LEASE_FILE), **found, "heartbeat_age_s": age, "stale": why}
