"""`sweeper launch` as its own process: it leaves no Ray process behind and no MLflow run RUNNING,
whether the sweep ends by itself or by Ctrl-C (while Ray starts, or while the trial runs).

Each launch starts its own embedded Ray in a new process group; every Ray process (GCS, raylet,
agents, workers) lives in that group, so a group with no live process means nothing was left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

SWEEP = {
    "name": "lifecycle",
    "method": "zeroshot",
    "model": "zoo/tiny-clip-v1",
    "data": {
        "source": {"shapes": {"per_class": {"train": 10, "val": 10, "test": 10}}},
        "id": "photo",
        "ood": ["sketch"],
    },
    "resources": {"cpu": 1},
}


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
    assert not left, f"Ray processes outlived `sweeper launch`: {left}"


def start(workdir: Path) -> tuple[subprocess.Popen, MlflowClient]:
    path = workdir / "lifecycle.yaml"
    path.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    client.search_experiments()  # the store exists before the driver's: polling it never races its migrations
    log = (workdir / "driver.log").open("w")
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweeper.cli", "launch", str(path)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return driver, client


def runs(client: MlflowClient, kind: str) -> list:
    every = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return [r for r in every if r.data.tags.get("sweeper.kind") == kind]


def interrupt_when(driver: subprocess.Popen, ready) -> None:
    """SIGINT (Ctrl-C) to the driver alone, once ``ready()`` holds."""
    deadline = time.monotonic() + 600
    while not ready():
        assert driver.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline, "never ready to interrupt within 600 s"
        time.sleep(0.1)
    driver.send_signal(signal.SIGINT)


def finish(driver: subprocess.Popen) -> int:
    """Wait for the driver to exit; then nothing of its Ray may live on."""
    try:
        code = driver.wait(timeout=600)
    finally:
        if driver.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(driver.pid, signal.SIGKILL)
    assert_nothing_left(driver.pid)
    return code


def test_a_finished_launch_leaves_no_ray_process_and_no_open_run(workdir: Path) -> None:
    driver, client = start(workdir)
    code = finish(driver)
    assert code == 0, (workdir / "driver.log").read_text()[-3000:]
    assert [r.info.status for r in runs(client, "sweep")] == ["FINISHED"]
    assert [r.info.status for r in runs(client, "trial")] == ["FINISHED"]


def test_ctrl_c_while_ray_starts_closes_the_parent_run_and_stops_ray(workdir: Path) -> None:
    # The parent run is created while Ray starts; Ctrl-C as soon as it exists lands in Ray's
    # start-up (or, on a fast machine, just after it): either way nothing may stay open or running.
    driver, client = start(workdir)

    def parent_exists() -> bool:
        with contextlib.suppress(Exception):
            return bool(runs(client, "sweep"))
        return False

    interrupt_when(driver, parent_exists)
    finish(driver)
    assert [r.info.status for r in runs(client, "sweep")] in (["KILLED"], ["FINISHED"], ["FAILED"])
    assert all(r.info.status != "RUNNING" for r in runs(client, "trial"))


def test_ctrl_c_during_the_trial_closes_every_run_and_stops_ray(workdir: Path) -> None:
    driver, client = start(workdir)

    def trial_running() -> bool:
        with contextlib.suppress(Exception):
            return any(r.info.status == "RUNNING" for r in runs(client, "trial"))
        return False

    interrupt_when(driver, trial_running)
    finish(driver)
    assert all(r.info.status != "RUNNING" for r in runs(client, "sweep") + runs(client, "trial"))
