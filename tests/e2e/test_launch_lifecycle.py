"""`sweeper launch` as its own process: it leaves no Ray process behind and no MLflow run RUNNING,
whether the sweep ends by itself or by Ctrl-C while Ray starts (tests/e2e/test_stop_signals.py
stops running trials).

Each launch starts its own embedded Ray in a new process group (see tests/processes.py).
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
from processes import assert_nothing_left

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
    assert finish(driver) == 130, (workdir / "driver.log").read_text()[-3000:]
    # The signal is acted on at the driver's next check point, never halfway through creating a run.
    parents = runs(client, "sweep")
    assert [r.info.status for r in parents] == ["KILLED"]
    assert parents[0].data.tags.get("sweeper.stopped_by") == "SIGINT"
    assert all(r.info.status != "RUNNING" for r in runs(client, "trial"))
