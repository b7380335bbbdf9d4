"""A continual sweep through `sweeper launch`, its driver SIGKILLed between two sessions of a
trial, then `sweeper resume`: the trial continues with its second session from the checkpoint of
its first, in the same MLflow run, and `sweeper report --layout sessions` reads the result."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeper.cli import main

pytestmark = pytest.mark.slow

NAME = "continual-e2e"
EPOCHS = 2  # per session
SWEEP: dict[str, Any] = {
    "name": NAME,
    "method": {"grid": ["ft", "lorsu"]},
    "model": "zoo/tiny-clip-v1",
    "data": {
        "source": {"shapes": {"per_class": {"train": 60, "val": 10, "test": 10}}},
        "id": "photo",
        "ood": ["sketch"],
    },
    "sessions": {"split": "photo", "count": 3},
    "train": {"epochs": EPOCHS, "batch_size": 32, "lr": 1e-4},
    "seeds": [0],
    "resources": {"cpu": 1},
    "max_concurrent": 1,
    "report": {"rows": ["method"]},
}


def trial_runs(client: MlflowClient) -> list:
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return [r for r in runs if r.data.tags.get("sweeper.sweep") == NAME and r.data.tags.get("sweeper.kind") == "trial"]


def kill_between_sessions(driver: subprocess.Popen, client: MlflowClient, within_s: float) -> Any:
    """SIGKILL the driver once a trial has logged its first session and not yet an epoch of its
    second; returns that run as it was."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the sweep ended before it could be killed"
        with contextlib.suppress(Exception):  # the store may be mid-creation
            for run in trial_runs(client):
                epochs = client.get_metric_history(run.info.run_id, "id/acc")
                if (
                    run.info.status == "RUNNING"
                    and "session/1/target_acc" in run.data.metrics
                    and len(epochs) == EPOCHS
                ):
                    os.kill(driver.pid, signal.SIGKILL)
                    driver.wait(timeout=30)
                    time.sleep(3)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(driver.pid, signal.SIGKILL)
                    return run
        time.sleep(0.2)
    raise AssertionError(f"no trial between its sessions within {within_s:.0f} s")


def test_a_continual_sweep_killed_between_sessions_resumes_with_the_next_session(
    local_ray, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    client.search_experiments()  # the store exists before the driver polls it (see test_resume)
    log = (workdir / "driver.log").open("w")
    driver = subprocess.Popen(
        [str(Path(sys.executable).parent / "sweeper"), "launch", str(path)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        killed = kill_between_sessions(driver, client, 600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        log.close()

    assert main(["resume", NAME]) == 0
    runs = {r.data.tags["sweeper.method"]: r for r in trial_runs(client)}
    assert sorted(runs) == ["ft", "lorsu"] and {r.info.status for r in runs.values()} == {"FINISHED"}
    resumed = client.get_run(killed.info.run_id)  # the same run, continued
    sessions = 3
    for run in runs.values():
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "id/acc")]
        assert steps == list(range(sessions * EPOCHS + 1)), steps  # every epoch once; the last is the summary
        metrics = client.get_run(run.info.run_id).data.metrics
        for k in range(1, sessions + 1):
            assert f"session/{k}/target_gain" in metrics and f"session/{k}/acc/{k}" in metrics
        assert {"continual/avg_acc", "continual/forgetting", "continual/target_gain"} <= set(metrics)
        assert metrics["continual/sessions"] == sessions
    # Session 1 was not trained again after the kill: its metrics were logged once, before it.
    history = client.get_metric_history(resumed.info.run_id, "session/1/target_acc")
    assert len(history) == 1 and history[0].value == killed.data.metrics["session/1/target_acc"]
    assert [m.step for m in client.get_metric_history(resumed.info.run_id, "session/2/target_acc")] == [2 * EPOCHS - 1]

    capsys.readouterr()
    assert main(["report", NAME, "--layout", "sessions", "--format", "csv"]) == 0
    table = capsys.readouterr().out
    assert "ft" in table and "lorsu" in table and "forgetting" in table
