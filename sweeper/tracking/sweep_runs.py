"""Which MLflow runs make up a sweep: its launches (parent runs) and the trials of one launch.

``sweeper.tracking.runs`` logs one parent run per launch (tags ``sweeper.kind=sweep`` and
``sweeper.sweep=<name>``) and one child run per trial (tag ``mlflow.parentRunId``). The rules
for reading them back live here once: ``sweeper.tracking.results`` applies them to MlflowClient's runs,
and ``sweeper status`` to the light runs of :mod:`sweeper.tracking.run_store` (which keeps MLflow unloaded).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sweeper.tracking.run_records import ALL, Keys, Run, RunStore
from sweeper.tracking.run_store import open_store
from sweeper.tracking.uri import redact_uri
from trainables.errors import InputError

KIND_TAG, PARENT_KIND = "sweeper.kind", "sweep"
PARENT_RUN_TAG = "mlflow.parentRunId"


def trial_id(run: Any) -> str:
    return run.data.tags.get("sweeper.trial_id") or run.info.run_name or run.info.run_id


def trials_of(children: Iterable[Any]) -> list[Any]:
    """The trial runs among a launch's children, in trial order."""
    # Other nested runs (a confirm sweep's parent) can hang off the parent; a missing kind tag is a trial.
    runs = [run for run in children if run.data.tags.get(KIND_TAG, "trial") == "trial"]
    return sorted(runs, key=lambda run: (trial_id(run), run.info.start_time or 0, run.info.run_id))


def unknown_experiment(experiment: str, where: str, names: Iterable[str]) -> InputError:
    return InputError(
        "--experiment",
        f"no experiment named {experiment!r} in {where}; known experiments: {', '.join(sorted(names)) or '(none)'}",
    )


def latest_launch(parents: list[Any], sweep: str, where: str) -> Any:
    """The newest parent run of ``sweep`` among ``parents``; ``where`` names the store in the error."""
    # Filter by name here rather than in the filter string: no quoting issues with odd names.
    matching = [run for run in parents if run.data.tags.get("sweeper.sweep") == sweep]
    if not matching:
        known = sorted({run.data.tags.get("sweeper.sweep", "?") for run in parents})
        raise InputError("sweep", f"no sweep named {sweep!r} in {where}; known sweeps: {', '.join(known) or '(none)'}")
    # Newest launch wins; run id breaks exact start-time ties deterministically.
    return max(matching, key=lambda run: (run.info.start_time or 0, run.info.run_id))


def _parents(store: RunStore, experiment_ids: list[str]) -> list[Run]:
    return store.runs_tagged(experiment_ids, KIND_TAG, PARENT_KIND)


def resolve_parent(sweep: str, tracking_uri: str | None = None, experiment: str | None = None) -> tuple[RunStore, Run]:
    """The store and the parent run of the latest launch of ``sweep``."""
    store = open_store(tracking_uri)
    where = redact_uri(store.uri)
    if experiment:
        found = store.experiment_named(experiment)
        if found is None:
            raise unknown_experiment(experiment, where, (e.name for e in store.experiments()))
        experiment_ids = [found.experiment_id]
        where = f"experiment {experiment!r} of {where}"
    else:  # several sweeps may share an experiment, and its name may differ from the sweep's
        experiment_ids = [e.experiment_id for e in store.experiments()]
    return store, latest_launch(_parents(store, experiment_ids), sweep, where)


def sweep_parents(store: RunStore) -> list[Run]:
    """Every sweep launch (parent run) in the store, newest first."""
    return _parents(store, [e.experiment_id for e in store.experiments()])


# The tags that tell a launch's trials from its other children and order them (trials_of, trial_id).
TRIAL_TAGS = frozenset({KIND_TAG, "sweeper.trial_id", "mlflow.runName"})


def trial_runs(store: RunStore, parent: Any, keys: Keys = ALL) -> list[Run]:
    """The trial (child) runs of one sweep launch (``parent``: any run with ``info``), in trial
    order; ``keys`` limits the tags (beyond :data:`TRIAL_TAGS`), metrics and params read."""
    if keys.tags is not None:
        keys = Keys(keys.tags | TRIAL_TAGS, keys.metrics, keys.params)
    return trials_of(store.runs_tagged([parent.info.experiment_id], PARENT_RUN_TAG, parent.info.run_id, keys))
