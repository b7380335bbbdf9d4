"""The driver killed with SIGKILL mid-sweep, then `sweeper resume NAME`.

The sweep runs in its own process (its own embedded Ray), is killed once one trial has finished and
the next is part-way, and is resumed here: finished trials are not rerun, the interrupted one
continues from its last checkpoint in the same MLflow run, and nothing is left RUNNING.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from processes import sigkill_with_one_trial_finished_and_one_midway
from sweep_files import killable_sweep

from sweeper.cli import main

pytestmark = pytest.mark.slow

SWEEP = killable_sweep("resume-e2e")


def trial_runs(client: MlflowClient) -> list:
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return [r for r in runs if r.data.tags.get("sweeper.sweep") == "resume-e2e"]


def test_a_sigkilled_driver_is_resumed_without_rerunning_or_losing_trials(local_ray, workdir: Path) -> None:
    path = workdir / "resume-e2e.yaml"
    path.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    sweeper = Path(sys.executable).parent / "sweeper"
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    # The store's tables are created here, before the driver starts: this test polls the store
    # while the driver creates it, and two processes migrating one sqlite file race (a "table
    # already exists" or CircularDependencyError in the driver's MLflow start-up).
    client.search_experiments()
    log = (workdir / "driver.log").open("w")
    driver = subprocess.Popen(
        [str(sweeper), "launch", str(path)], cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        at_kill = sigkill_with_one_trial_finished_and_one_midway(driver, client, "resume-e2e", 600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        log.close()
    parents = [r for r in trial_runs(client) if r.data.tags["sweeper.kind"] == "sweep"]
    assert [p.info.status for p in parents] == ["RUNNING"]  # what a killed driver leaves

    # A changed sweep file is refused; the recorded one is what resume runs.
    path.write_text(yaml.safe_dump({**SWEEP, "search": {"L": {"grid": [2, 4, 6, 8]}}}, sort_keys=False))
    assert main(["resume", "resume-e2e"]) == 2
    path.write_text(yaml.safe_dump(SWEEP, sort_keys=False))

    assert main(["resume", "resume-e2e"]) == 0
    runs = trial_runs(client)
    parents = [r for r in runs if r.data.tags["sweeper.kind"] == "sweep"]
    children = [r for r in runs if r.data.tags["sweeper.kind"] == "trial"]
    assert [p.info.status for p in parents] == ["FINISHED"] and parents[0].info.run_id == at_kill["midway"].data.tags[
        "mlflow.parentRunId"
    ]
    assert len(children) == 3 and {c.info.status for c in children} == {"FINISHED"}  # no duplicate run
    assert sorted(c.data.params["L"] for c in children) == ["2", "4", "6"]
    by_id = {c.info.run_id: c for c in children}
    done_before = by_id[at_kill["finished"].info.run_id]
    assert done_before.info.end_time == at_kill["finished"].info.end_time  # not rerun
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "id/acc")]
        assert set(steps) == {0, 1, 2, 3, 4}, (child.data.params["L"], steps)  # no gap; 4 is the summary
    midway_steps = [m.step for m in client.get_metric_history(at_kill["midway"].info.run_id, "id/acc")]
    assert midway_steps == [0, 1, 2, 3, 4]  # continued in the same run: no gap, no repeat
    finished_steps = [m.step for m in client.get_metric_history(done_before.info.run_id, "id/acc")]
    assert finished_steps == [0, 1, 2, 3, 4]  # and no repeat for the trial that had finished
    assert main(["resume", "resume-e2e"]) == 0  # resuming a finished sweep does nothing
