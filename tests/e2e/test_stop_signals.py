"""Ctrl-C and SIGTERM to a running driver, with real processes.

The first signal stops the sweep cleanly: the driver exits 128 + the signal's number, the trials it
stopped have their runs closed KILLED with a ``sweeper.stopped_by`` tag (and so does the parent),
its lease is released, no Ray process is left, and it prints the resume command. ``sweeper resume``
then finishes the sweep with one run per trial, each epoch logged once. A second signal exits at
once; the lease stays behind, stale, and resume takes it over.
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
from sweep_files import killable_sweep

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STOPPED_BY = "sweeper.stopped_by"


def sweeper(workdir: Path, *args: str, log: Path) -> subprocess.Popen:
    """This checkout's CLI as a process group of its own, its output in ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sweeper.cli", *args],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait(driver: subprocess.Popen) -> int:
    try:
        return driver.wait(timeout=600)
    finally:
        if driver.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(driver.pid, signal.SIGKILL)


def runs(client: MlflowClient, name: str, kind: str) -> list:
    found = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return [r for r in found if r.data.tags.get("sweeper.sweep") == name and r.data.tags.get("sweeper.kind") == kind]


def launch_until_an_epoch_is_logged(workdir: Path, name: str) -> tuple[subprocess.Popen, MlflowClient]:
    """Launch the sweep; return once a trial is RUNNING with an epoch logged (a checkpoint exists)."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(killable_sweep(name), sort_keys=False))
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    client.search_experiments()  # the store exists before the driver's: polling it never races its migrations
    driver = sweeper(workdir, "launch", str(path), log=workdir / "launch.log")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert driver.poll() is None, (workdir / "launch.log").read_text()[-3000:]
        with contextlib.suppress(Exception):
            if any(r.info.status == "RUNNING" and r.data.metrics for r in runs(client, name, "trial")):
                return driver, client
        time.sleep(0.3)
    raise AssertionError("no trial logged an epoch within 600 s")


def resume_and_check(workdir: Path, client: MlflowClient, name: str) -> str:
    """``sweeper resume`` finishes the sweep: one FINISHED run per trial, each epoch once, no
    ``stopped_by`` tag left on runs that are no longer stopped. Returns the resume's output."""
    resumed = sweeper(workdir, "resume", name, log=workdir / "resume.log")
    code = wait(resumed)
    output = (workdir / "resume.log").read_text()
    assert code == 0, output[-3000:]
    trials = runs(client, name, "trial")
    assert len(trials) == 3 and len({r.data.tags["sweeper.trial_id"] for r in trials}) == 3
    for run in trials:
        assert run.info.status == "FINISHED" and STOPPED_BY not in run.data.tags
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "id/acc")]
        assert steps == [0, 1, 2, 3, 4], (run.data.params["L"], steps)  # each epoch once; 4 is the summary
    [parent] = runs(client, name, "sweep")
    assert parent.info.status == "FINISHED" and STOPPED_BY not in parent.data.tags
    return output


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_sweep_cleanly_and_resume_finishes_it(workdir: Path, stop: signal.Signals) -> None:
    name = f"stop-{stop.name.lower()}"
    driver, client = launch_until_an_epoch_is_logged(workdir, name)
    driver.send_signal(stop)
    code = wait(driver)
    output = (workdir / "launch.log").read_text()
    assert code == 128 + stop, output[-3000:]
    assert_nothing_left(driver.pid)
    assert f"stopped by {stop.name}" in output and f"sweeper resume {name}" in output
    assert not (workdir / "sweeps" / name / "driver.lease").exists()
    [parent] = runs(client, name, "sweep")
    assert parent.info.status == "KILLED" and parent.data.tags[STOPPED_BY] == stop.name
    trials = runs(client, name, "trial")
    assert "RUNNING" not in {r.info.status for r in trials}
    killed = [r for r in trials if r.info.status == "KILLED"]
    assert killed and all(r.data.tags[STOPPED_BY] == stop.name for r in killed)
    assert all(STOPPED_BY not in r.data.tags for r in trials if r.info.status == "FINISHED")
    resume_and_check(workdir, client, name)


def test_a_second_signal_exits_at_once_and_resume_takes_the_stale_lease_over(workdir: Path) -> None:
    name = "stop-twice"
    driver, client = launch_until_an_epoch_is_logged(workdir, name)
    driver.send_signal(signal.SIGINT)
    time.sleep(0.05)  # the first one is being acted on (Tune's loop takes its next step within 0.1 s)
    driver.send_signal(signal.SIGTERM)
    code = wait(driver)
    output = (workdir / "launch.log").read_text()
    assert code == 128 + signal.SIGTERM, output[-3000:]
    assert "second signal (SIGTERM): exiting now" in output
    assert_nothing_left(driver.pid)
    assert (workdir / "sweeps" / name / "driver.lease").exists()  # not released: it goes stale
    resumed = resume_and_check(workdir, client, name)
    assert f"sweep {name}: taking over the stale lease" in resumed, resumed[-3000:]
