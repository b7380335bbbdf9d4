"""MLflow tracking: one parent run per sweep, one child run per trial, never duplicated or left RUNNING.

The driver creates the store, the experiment and the parent run before any trial starts (first
use of a sqlite store runs migrations, which must not race between trials). A trial finds its
child run again by its Ray trial id, so a retry or a resumed sweep reattaches instead of
duplicating. After the sweep, the driver closes every child that a killed worker left open.
All access goes through ``MlflowClient`` with explicit run ids: no global "active run" state in
long-lived Ray workers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from sweeper.tracking.failure_tags import FAILURE_HISTORY_TAG, FAILURE_TAG, failure_text, with_attempt
from sweeper.tracking.locked import retry_locked
from sweeper.tracking.provenance import git_sha, versions

# Tag of a finished trial run: the step (one past the last epoch) that holds its summary, the
# metrics of the epoch selected on validation; learning curves leave that step out.
SUMMARY_STEP_TAG = "sweeper.summary_step"
# Tag of a run closed KILLED because a signal stopped its sweep: the signal's name (SIGINT, SIGTERM).
STOPPED_BY_TAG = "sweeper.stopped_by"


def summary_step_of(run: Any) -> int | None:
    """The step that holds a finished trial's summary, or None (a run from before selection)."""
    value = run.data.tags.get(SUMMARY_STEP_TAG, "")
    return int(value) if value.isdigit() else None


def artifact_root(uri: str) -> str | None:
    """Keep artifacts beside a sqlite store (not in the trial's working directory)."""
    if uri.startswith("sqlite:///"):
        return str(Path(uri[len("sqlite:///") :]).parent / "mlartifacts")
    return None


@dataclass(frozen=True)
class SweepRun:
    """Where a sweep's runs live; picklable, so trials receive it."""

    uri: str
    experiment_id: str
    parent_run_id: str
    sweep: str


def start_sweep(
    name: str, experiment: str | None, uri: str, tags: dict[str, str], sweep_file: str | None = None
) -> SweepRun:
    """Create (or reuse) the experiment and a new parent run for this launch; the sweep file's
    text becomes the run's description (shown by the MLflow UI) and its ``sweep.yaml`` artifact."""
    client = MlflowClient(uri)
    existing = client.get_experiment_by_name(experiment or name)
    if existing is not None:
        experiment_id = existing.experiment_id
    else:
        experiment_id = client.create_experiment(experiment or name, artifact_location=artifact_root(uri))
    description = {"mlflow.note.content": f"Sweep `{name}`:\n\n```yaml\n{sweep_file}\n```"} if sweep_file else {}
    parent = client.create_run(
        experiment_id,
        run_name=name,
        tags={"sweeper.kind": "sweep", "sweeper.sweep": name, "sweeper.git_sha": git_sha(), **description, **tags},
    )
    if sweep_file:
        client.log_text(parent.info.run_id, sweep_file, "sweep.yaml")
    return SweepRun(uri, experiment_id, parent.info.run_id, name)


def child_runs(sweep: SweepRun, unsettled: bool = False) -> list:
    """The sweep's trial runs (a confirm sweep's parent run nests under it too, and is not one);
    with ``unsettled``, only those neither FINISHED nor KILLED: the store filters them, so closing
    a sweep of thousands of finished trials reads none of them."""
    client = MlflowClient(sweep.uri)
    status = " and attributes.status != 'FINISHED' and attributes.status != 'KILLED'" if unsettled else ""
    runs = client.search_runs(
        [sweep.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{sweep.parent_run_id}'{status}",
        max_results=50_000,
    )
    return [run for run in runs if run.data.tags.get("sweeper.kind", "trial") == "trial"]


def finish_sweep(
    sweep: SweepRun, trial_status: dict[str, str], aborted: bool = False, stopped_by: str | None = None
) -> None:
    """Close the parent, and every child still open, from Ray's view of each trial.

    ``trial_status`` maps Ray trial id -> "FINISHED" | "FAILED". Children of trials Ray does not
    know (the driver died mid-sweep) are marked KILLED, and so is the parent of an ``aborted`` sweep.
    ``stopped_by`` (a signal's name) is tagged on the parent and on each child it closed KILLED.
    """
    client = MlflowClient(sweep.uri)
    stopped = [RunTag(STOPPED_BY_TAG, stopped_by)] if stopped_by else []
    for run in child_runs(sweep, unsettled=True):
        trial_id = run.data.tags.get("sweeper.trial_id", "")
        status = trial_status.get(trial_id, "KILLED")
        if status == "KILLED" and stopped:
            client.log_batch(run.info.run_id, tags=stopped)
        if status != run.info.status:
            client.set_terminated(run.info.run_id, status)
    failed = any(s != "FINISHED" for s in trial_status.values())
    status = "KILLED" if aborted else "FAILED" if failed else "FINISHED"
    if stopped:
        client.log_batch(sweep.parent_run_id, tags=stopped)
    client.set_terminated(sweep.parent_run_id, status)


def reopen(client: MlflowClient, run: Any) -> None:
    """Mark a run that a resumed sweep runs again RUNNING, without the tag of the stop that ended
    it: tags describe the run as it is (a filter on ``sweeper.stopped_by`` finds stopped runs)."""
    client.update_run(run.info.run_id, status="RUNNING")
    if STOPPED_BY_TAG in run.data.tags:
        client.delete_tag(run.info.run_id, STOPPED_BY_TAG)


class TrialRun:
    """The child run of one trial, used as a context manager inside the trial. Its reads and writes
    retry while a sqlite store is locked by the sweep's other trials (:mod:`sweeper.tracking.locked`)."""

    def __init__(
        self, sweep: SweepRun, trial_id: str, trial_name: str, params: dict[str, Any], tags: dict[str, str]
    ) -> None:
        self.sweep, self.client = sweep, MlflowClient(sweep.uri)
        self.trial_id, self.trial_name = trial_id, trial_name
        self.params, self.tags = params, tags
        self.run_id = ""
        self.created = False
        self.failure = ""  # the reason the previous attempt of this trial failed, if it did
        self.history = ""  # the errors of the attempts before that one (FAILURE_HISTORY_TAG)
        self.finished_metrics: dict[str, float] | None = None  # set when the run had already finished
        self.logged_through = -1  # last step in MLflow before this attempt

    def __enter__(self) -> TrialRun:
        found = retry_locked(
            lambda: self.client.search_runs(
                [self.sweep.experiment_id],
                filter_string=(
                    f"tags.`sweeper.trial_id` = '{self.trial_id}' and "
                    f"tags.`mlflow.parentRunId` = '{self.sweep.parent_run_id}'"
                ),
                max_results=1,
            )
        )
        if found:  # a retry or a resumed sweep: reattach
            self.run_id = found[0].info.run_id
            self.failure = found[0].data.tags.get(FAILURE_TAG, "")
            self.history = found[0].data.tags.get(FAILURE_HISTORY_TAG, "")
            logged = sorted(found[0].data.metrics)
            if logged:  # epochs the earlier attempt logged; a retry from an older checkpoint redoes them
                history = retry_locked(lambda: self.client.get_metric_history(self.run_id, logged[0]))
                self.logged_through = max(m.step for m in history)
            if found[0].info.status == "FINISHED":
                # Finished after Tune's last experiment snapshot: a resumed sweep must not train it again.
                self.finished_metrics = dict(found[0].data.metrics)
            else:
                retry_locked(lambda: reopen(self.client, found[0]))
            return self
        tags = {
            "mlflow.parentRunId": self.sweep.parent_run_id,
            "sweeper.kind": "trial",
            "sweeper.sweep": self.sweep.sweep,
            "sweeper.trial_id": self.trial_id,
            "sweeper.git_sha": git_sha(),
            "sweeper.versions": json.dumps(versions()),
            **self.tags,
        }
        run = retry_locked(
            lambda: self.client.create_run(self.sweep.experiment_id, run_name=self.trial_name, tags=tags)
        )
        self.run_id, self.created = run.info.run_id, True
        params = [Param(k, str(v)) for k, v in sorted(self.params.items())]
        retry_locked(lambda: self.client.log_batch(self.run_id, params=params))
        return self

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Log one epoch's metrics. A step an earlier attempt already logged is skipped: training is
        deterministic, so the redone epoch gives the same values, and the history stays one point
        per epoch."""
        if step <= self.logged_through:
            return
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        retry_locked(lambda: self.client.log_batch(self.run_id, metrics=batch))

    def tag(self, key: str, value: str) -> None:
        retry_locked(lambda: self.client.log_batch(self.run_id, tags=[RunTag(key, value)]))

    def log_text_once(self, name: str, text: str) -> None:
        """An artifact written when the run is created, not again when a retry reattaches."""
        if self.created:
            self.log_text(name, text)

    def log_text(self, name: str, text: str) -> None:
        """A text artifact of the trial (a table, a curve)."""
        self.client.log_text(self.run_id, text, name)

    def __exit__(self, kind, error, traceback) -> None:
        # The previous attempt's error moves to the history only now that this attempt has ended:
        # a worker killed mid-retry leaves the run with the reason it last failed.
        if self.failure:
            self.tag(FAILURE_HISTORY_TAG, with_attempt(self.history, self.failure))
        if kind is not None:  # the reason stays on the run, readable in the UI and in tables
            self.tag(FAILURE_TAG, failure_text(kind, error))
        elif self.failure:  # a retry that succeeded: the run did not fail
            retry_locked(lambda: self.client.delete_tag(self.run_id, FAILURE_TAG))
        status = RunStatus.to_string(RunStatus.FINISHED if kind is None else RunStatus.FAILED)
        retry_locked(lambda: self.client.set_terminated(self.run_id, status))
