"""One driver per sweep, with real driver processes.

A `sweeper launch` runs a small sweep in its own process. While it runs, `sweeper resume NAME` and
a second `sweeper launch` exit 2 naming its host and pid, and start no MLflow run. Once it is
SIGKILLed, two `sweeper resume NAME` started together end with exactly one driver: one exits 2,
the other takes the stale lease over and finishes the sweep with one run per trial.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from sweep_files import killable_sweep

from sweeper.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NAME = "lease-e2e"
SWEEP = killable_sweep(NAME)


def sweeper(workdir: Path, *args: str, **popen: object) -> subprocess.Popen:
    """This checkout's CLI in a process of its own (the installed console script may be another's)."""
    return subprocess.Popen(
        [sys.executable, "-m", "sweeper.cli", *args],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def runs(client: MlflowClient) -> list:
    found = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return [r for r in found if r.data.tags.get("sweeper.sweep") == NAME]


def of_kind(found: list, kind: str) -> list:
    return [r for r in found if r.data.tags.get("sweeper.kind") == kind]


def wait_for_a_running_trial(driver: subprocess.Popen, client: MlflowClient) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the sweep ended before the test could reach it"
        with contextlib.suppress(Exception):  # the store may be mid-creation
            if [r for r in of_kind(runs(client), "trial") if r.info.status == "RUNNING"]:
                return
        time.sleep(0.5)
    raise AssertionError("no trial started within 600 s")


def status_line(capsys: pytest.CaptureFixture) -> str:
    assert main(["status", NAME]) == 0
    return next(line for line in capsys.readouterr().out.splitlines() if line.startswith("driver: "))


def test_one_driver_per_sweep(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    path = workdir / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    client.search_experiments()  # create the store's tables before two processes race to (see test_resume)
    host = socket.gethostname()
    log = (workdir / "driver.log").open("w")
    driver = sweeper(workdir, "launch", str(path), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_a_running_trial(driver, client)
        # A second driver of the running sweep, by resume or by launch: refused before it starts anything.
        second = [sweeper(workdir, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for args in
                  (["resume", NAME], ["launch", str(path)])]  # fmt: skip
        outs = [p.communicate(timeout=300) for p in second]
        assert [p.returncode for p in second] == [2, 2], outs
        for _, err in outs:
            line = f"sweeper: error: sweep '{NAME}': a driver is already running it: pid {driver.pid} on host {host}, "
            assert err.startswith(line) and "last heartbeat" in err and err.count("\n") == 1, err
        assert driver.poll() is None, "the sweep ended before it could be killed"
        assert len(of_kind(runs(client), "sweep")) == 1  # no second parent run
        trials = of_kind(runs(client), "trial")
        assert len({r.data.params["L"] for r in trials}) == len(trials)  # no trial run twice
        assert status_line(capsys).startswith(f"driver: alive (pid {driver.pid} on host {host}, last heartbeat ")

        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        time.sleep(3)  # Ray's own processes share the driver's fate; then clear any straggler
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        log.close()
    assert status_line(capsys) == (
        f"driver: not alive (lease of pid {driver.pid} on host {host}: its process is gone); "
        f"`sweeper resume {NAME}` finishes the sweep"
    )

    # Two resumes at once after the kill: exactly one takes the stale lease over and finishes.
    resumes = [sweeper(workdir, "resume", NAME, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in resumes]
    codes = [p.returncode for p in resumes]
    assert sorted(codes) == [0, 2], outs
    winner, loser = (resumes[0], resumes[1]) if codes[0] == 0 else (resumes[1], resumes[0])
    won_err, lost_err = (outs[0][1], outs[1][1]) if codes[0] == 0 else (outs[1][1], outs[0][1])
    assert f"taking over the stale lease of pid {driver.pid} on host {host} (its process is gone)" in won_err
    assert f"a driver is already running it: pid {winner.pid} on host {host}" in lost_err, lost_err
    assert loser.returncode == 2

    found = runs(client)
    parents, trials = of_kind(found, "sweep"), of_kind(found, "trial")
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert sorted(t.data.params["L"] for t in trials) == ["2", "4", "6"]  # one run per trial
    assert {t.info.status for t in trials} == {"FINISHED"}
    assert status_line(capsys) == f"driver: not alive (no lease in {workdir / 'sweeps' / NAME})"
    assert sorted(p.name for p in (workdir / "sweeps" / NAME).glob("driver.lease*")) == []
