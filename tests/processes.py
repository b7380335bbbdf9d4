"""Process groups of real driver processes (importable: ``tests`` is on the path).

A driver started with ``start_new_session=True`` leads a process group of its own; every Ray process
of its embedded instance (GCS, raylet, agents, workers) lives in that group, so a group with no
live process means the driver left nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any


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


def sigkill_with_one_trial_finished_and_one_midway(driver: Any, client: Any, sweep: str, within_s: float) -> dict:
    """SIGKILL the driver (and then its process group) once one trial run of ``sweep`` has FINISHED
    and another is RUNNING with two epochs logged; returns those two runs as they were."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the sweep ended before it could be killed"
        with contextlib.suppress(Exception):  # the store may be mid-creation
            every = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
            ours = [r for r in every if r.data.tags.get("sweeper.sweep") == sweep]
            trials = [r for r in ours if r.data.tags.get("sweeper.kind") == "trial"]
            finished = [r for r in trials if r.info.status == "FINISHED"]
            midway = [
                r
                for r in trials
                if r.info.status == "RUNNING" and len(client.get_metric_history(r.info.run_id, "id/acc")) >= 2
            ]
            if finished and midway:
                os.kill(driver.pid, signal.SIGKILL)
                driver.wait(timeout=30)
                time.sleep(3)  # Ray's own processes share the driver's fate; then clear any straggler
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(driver.pid, signal.SIGKILL)
                return {"finished": finished[0], "midway": midway[0]}
        time.sleep(0.5)
    raise AssertionError(f"no point to kill the driver at within {within_s:.0f} s")
