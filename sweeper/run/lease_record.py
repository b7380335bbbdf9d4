"""What a driver's lease says and how another process judges it: the record a driver publishes
(host, boot id, pid namespace, pid and its start time, a unique token, the heartbeat) and the
rules that make it stale. Shared by every lease store (:mod:`sweeper.run.lease`)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

HEARTBEAT_S = 5.0  # how often the driver renews its heartbeat
STALE_AFTER_S = 60.0  # a heartbeat older than this (another machine's driver) is stale


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


def new_record(name: str, heartbeat_s: float, stale_after_s: float) -> dict[str, Any]:
    """The lease this process publishes for sweep ``name``, with a fresh token."""
    now = time.time()
    return {
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


def is_lease(value: Any) -> bool:
    """A record that a driver wrote whole (anything else counts as unreadable)."""
    return isinstance(value, dict) and bool(value.get("token")) and isinstance(value.get("heartbeat"), (int, float))


def unreadable(tag: str, modified: float) -> dict[str, Any]:
    """Stands in for a lease that no driver wrote: another machine's, its modification time as heartbeat."""
    return {"token": f"unreadable-{tag}", "host": "?", "pid": "?", "heartbeat": modified}


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
