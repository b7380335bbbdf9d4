"""Process groups of real driver processes (importable: ``tests`` is on the path).

A driver started with ``start_new_session=True`` leads a process group of its own; every Ray process
of its embedded instance (GCS, raylet, agents, workers) lives in that group, so a group with no
live process means the driver left nothing behind.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path


def live_members(group: int) -> list[str]:
    """The processes of process group ``group`` that have not exited (zombies excluded)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, pgrp
            if int(fields[2]) == group and fields[0] != "Z":
                with contextlib.suppress(OSError):
                    name = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{stat.parent.name}: {name[:120]}")
    return found


def assert_nothing_left(group: int) -> None:
    """The group empties: raylet and GCS are gone when the driver exits; their children follow them."""
    deadline = time.monotonic() + 60
    while (left := live_members(group)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"Ray processes outlived the driver: {left}"
