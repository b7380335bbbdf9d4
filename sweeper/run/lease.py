"""One driver per sweep: the lease ``<storage>/<name>/driver.lease``.

A driver (``launch``, ``resume``) holds the lease while it runs: a record naming its host, pid,
the pid's start time, a unique token, and a heartbeat that a daemon thread renews every
``HEARTBEAT_S`` seconds (:mod:`sweeper.run.lease_record`). It is deleted when the driver exits,
normally or by an exception.

The lease lives in a store that can create it only where none exists, atomically:
a file in a local or NFS folder (``link()``, :mod:`sweeper.run.lease_files`), or an object under
``s3://`` storage (conditional writes, :mod:`sweeper.run.lease_s3`). Other URI schemes (``gs://``
...) hold no lease. A stale lease is taken over by exactly one of several takers.

Stale means: on the same machine (host name, boot id and pid namespace all match) the process is
gone or its pid now belongs to a younger process; on another machine the heartbeat is older than
the lease's ``stale_after_s`` (``STALE_AFTER_S``; clocks must agree to well within it). A live
process on the same machine keeps its lease however old its heartbeat: it may be stuck, but
taking over would run two drivers. A driver that finds its lease taken over (it was judged stale
while alive, e.g. suspended) exits at once, so that two drivers never run past one heartbeat.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from sweeper.run.lease_files import LEASE_FILE, FileLeaseStore
from sweeper.run.lease_record import HEARTBEAT_S, STALE_AFTER_S, describe, judge, new_record
from trainables.errors import InputError

_ATTEMPTS = 200  # acquisition rounds (50 ms apart) before giving up on a contended lease


class LeaseStore(Protocol):
    """Where a lease lives. Errors reaching the store are ``OSError``."""

    where: str  # the lease's location, as messages show it

    def prepare(self) -> None: ...
    def found(self) -> bool: ...
    def create(self, record: dict[str, Any]) -> bool: ...
    def read(self) -> dict[str, Any] | None: ...
    def replace(self, seen: dict[str, Any], record: dict[str, Any]) -> bool: ...
    def delete(self, seen: dict[str, Any]) -> None: ...
    def claim(self, seen: dict[str, Any], record: dict[str, Any]) -> AbstractContextManager[bool]: ...


def _exit_lost(message: str) -> None:
    print(f"sweeper: {message}; this driver stops now", file=sys.stderr, flush=True)
    os._exit(1)  # no clean-up: the MLflow runs and the experiment folder now belong to the other driver


class DriverLease:
    """The lease of sweep ``name`` in ``folder`` (or in ``store``): :meth:`acquire`, then
    :meth:`release` (or ``with``)."""

    def __init__(
        self,
        folder: Path | None,
        name: str,
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
        on_lost: Callable[[str], None] = _exit_lost,
        store: LeaseStore | None = None,
    ) -> None:
        if store is None:
            assert folder is not None, "a lease needs a folder or a store"
            store = FileLeaseStore(Path(folder))
        self.store, self.name = store, name
        self.heartbeat_s, self.on_lost = heartbeat_s, on_lost
        self.record: dict[str, Any] = new_record(name, heartbeat_s, stale_after_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease, or a stale one over (saying so on stderr); InputError while it is live."""
        try:
            self.store.prepare()
            return self._acquire()
        except OSError as error:
            raise InputError(self.store.where, f"cannot write the driver lease: {error.strerror or error}") from None

    def _acquire(self) -> None:
        for _ in range(_ATTEMPTS):
            self.record["heartbeat"] = time.time()
            if self.store.create(self.record):
                return self._start()
            lease = self.store.read()
            if lease is None:
                continue  # released meanwhile: try again at once
            why = judge(lease)
            if why is None:
                raise InputError(
                    f"sweep {self.name!r}",
                    f"a driver is already running it: {describe(lease)} (lease {self.store.where}). "
                    f"Wait for it to end, or stop it and run `sweeper resume {self.name}`",
                )
            if self._take_over(lease, why):
                return self._start()
            time.sleep(0.05)  # another taker holds the claim: look again once it is done
        raise InputError(
            f"sweep {self.name!r}", f"could not take the lease {self.store.where}: other drivers keep it busy"
        )

    def _take_over(self, lease: dict[str, Any], why: str) -> bool:
        with self.store.claim(lease, self.record) as held:
            if not held:
                return False
            current = self.store.read()
            if current is None or current["token"] != lease["token"]:
                return False  # replaced or released since it was read: start again
            self.record["heartbeat"] = time.time()
            if not self.store.replace(current, self.record):
                return False  # another taker replaced it first (a store that checks what it replaces)
            old = f"pid {lease.get('pid')} on host {lease.get('host')}"
            print(f"sweeper: sweep {self.name}: taking over the stale lease of {old} ({why})", file=sys.stderr)
            return True

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="sweeper-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                current = self.store.read()
                if current is not None and current["token"] != self.record["token"]:
                    lost = f"sweep {self.name}: the lease was taken over by {describe(current)}"
                    return self.on_lost(lost)
                self.record["heartbeat"] = time.time()
                if current is None:  # deleted by hand: publish it again unless someone else did
                    if not self.store.create(self.record):
                        return self.on_lost(f"sweep {self.name}: the lease {self.store.where} was deleted and taken")
                else:
                    self.store.replace(current, self.record)  # if it changed meanwhile, the next beat sees by whom
            except OSError:
                continue  # e.g. an NFS hiccup: the next beat tries again, well within the timeout

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still this driver's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(OSError):
            current = self.store.read()
            if current is not None and current["token"] == self.record["token"]:
                self.store.delete(current)

    def __enter__(self) -> DriverLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lease_store(folder: str) -> LeaseStore | None:
    """The store of the lease for the sweep folder ``folder`` (a path or a URI); None for URI
    schemes that cannot hold one (only ``s3://`` can)."""
    from sweeper.run.cluster import is_uri

    if not is_uri(folder):
        return FileLeaseStore(Path(folder))
    if folder.lower().startswith("s3://"):
        from sweeper.run.lease_s3 import S3LeaseStore

        return S3LeaseStore(folder)
    return None


def lease_for(folder: str, name: str) -> AbstractContextManager[Any]:
    """The lease a driver of sweep ``name`` holds while it runs (none where the storage cannot hold one)."""
    store = lease_store(folder)
    return contextlib.nullcontext() if store is None else DriverLease(None, name, store=store)


def driver_state(folder: Path | str, store: LeaseStore | None = None) -> dict[str, Any]:
    """What ``sweeper status`` shows: whether a driver holds the lease of the sweep in ``folder``
    (or in ``store``) and is alive."""
    store = store or FileLeaseStore(Path(folder))
    try:
        if not store.found():  # e.g. a sweep launched on another machine, its storage not shared here
            return {"alive": None, "lease": None}
        lease = store.read()
    except OSError:  # an object store out of reach
        return {"alive": None, "lease": None}
    if lease is None:
        return {"alive": False, "lease": None}
    why = judge(lease)
    age = time.time() - float(lease.get("heartbeat", 0))
    found = {k: lease.get(k) for k in ("host", "pid", "started_utc")}
    return {"alive": why is None, "lease": store.where, **found, "heartbeat_age_s": age, "stale": why}


__all__ = ["LEASE_FILE", "DriverLease", "LeaseStore", "driver_state", "lease_for", "lease_store"]
