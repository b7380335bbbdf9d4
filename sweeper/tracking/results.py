"""Read a sweep back from MLflow as pandas DataFrames.

:mod:`sweeper.tracking.runs` logs one parent run per sweep launch (tag ``sweeper.kind=sweep``) and
one child run per trial (tag ``mlflow.parentRunId``). This module finds the sweep's parent run (the
most recent launch unless a run id is given) and turns its children into a tidy wide frame, a long
metric-history frame, and the decoded sweep metadata. It only reads; it never creates a store.

The runs come from :mod:`sweeper.tracking.launches` and the metric histories from
:mod:`sweeper.tracking.bulk_reads`, a page of runs per query: a sweep of 10,000 trials reads in
seconds, not the quarter of an hour that one MLflow call per run and metric took. ``bulk=False``
reads with those per-run calls, which return the same frames (tests/unit/test_bulk_reads.py).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient

from sweeper.spec.references import REFERENCE_TAG
from sweeper.tables.frontier import frontier  # noqa: F401 - results.frontier(df, ...): the front with WiSE points
from sweeper.tables.pareto import pareto  # noqa: F401 - results.pareto(df, ...): the API next to load
from sweeper.tables.sessions import accuracy_matrix  # noqa: F401 - results.accuracy_matrix(df.iloc[0])
from sweeper.tracking import bulk_reads
from sweeper.tracking.launches import (  # noqa: F401 - resolve_parent, sweep_parents, trial_runs: this module's API
    Launch,
    client_of,
    default_tracking_uri,
    read_launch,
    resolve_parent,
    runs_by_id,
    sweep_parents,
    trial_runs,
)
from sweeper.tracking.runs import summary_step_of
from sweeper.tracking.sweep_runs import trial_id

BASE_COLUMNS = ["sweep", "run_id", "trial_id", "status", "method", "seed", "config_hash", "duration_s", "reference"]
# MLflow stores every param as a string; these spellings mean "not set" (str(None), empty).
_MISSING = {"", "None", "none", "null"}


def open_store(tracking_uri: str | None = None) -> MlflowClient:
    """A client of the MLflow store, checked to be readable (InputError otherwise)."""
    return client_of(tracking_uri)[0]


def natural(values: Iterable[Any]) -> pd.Series:
    """MLflow's string params as int, float, bool or string (missing stays missing)."""
    raw = [
        None if v is None or (isinstance(v, float) and math.isnan(v)) or str(v) in _MISSING else str(v) for v in values
    ]
    present = [v for v in raw if v is not None]
    complete = len(present) == len(raw)
    if not present:
        return pd.Series(raw, dtype="object")
    for cast in (int, float):
        try:
            parsed = [None if v is None else cast(v) for v in raw]
        except ValueError:
            continue
        if cast is int:
            # Nullable Int64 keeps a conditional int param (e.g. rank) integral next to its gaps.
            return pd.Series(parsed, dtype="int64" if complete else "Int64")
        return pd.Series([math.nan if v is None else v for v in parsed], dtype="float64")
    if set(present) <= {"True", "False"}:
        return pd.Series([None if v is None else v == "True" for v in raw], dtype="bool" if complete else "boolean")
    return pd.Series(raw, dtype="str")


def load(
    sweep: str,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    best: bool | list[str] = False,
    bulk: bool = True,
) -> pd.DataFrame:
    """One row per trial of the sweep's latest launch: ids, typed params, final metric values.

    Columns: ``sweep, run_id, trial_id, status, method, seed, config_hash, duration_s,
    reference`` (the method of a reference trial, else None), then every
    param (sorted by name, cast by :func:`natural`), then every metric (sorted, float; the latest
    logged value: for a finished trial, its summary, the epoch selected on validation, with
    ``last/<metric>`` for the last epoch and ``best_epoch``). ``best=True`` adds ``best/<metric>``
    (best epoch) for the sweep's objective and report metrics, or ``best=[...]`` for the metrics
    listed. ``frame.attrs`` holds ``params``, ``metrics`` (the column names of each kind), ``sweep``
    and ``parent_run_id``. ``bulk=False`` reads with MlflowClient's per-run calls (the same frame,
    slower: :mod:`sweeper.tracking.bulk_reads`).
    """
    return frame_of(read_launch(sweep, tracking_uri, experiment, parent_run_id, bulk), best)


def frame_of(launch: Launch, best: bool | list[str] = False) -> pd.DataFrame:
    """:func:`load`'s frame of a launch already read."""
    runs, parent, sweep = launch.trials, launch.parent, launch.sweep
    params = sorted({k for run in runs for k in run.data.params} - {"method", "seed"})
    metrics = sorted({k for run in runs for k in run.data.metrics})
    params = [p for p in params if p not in metrics and p not in BASE_COLUMNS]
    columns: dict[str, Any] = {
        "sweep": pd.Series([sweep] * len(runs), dtype="str"),
        "run_id": pd.Series([run.info.run_id for run in runs], dtype="str"),
        "trial_id": pd.Series([trial_id(run) for run in runs], dtype="str"),
        "status": pd.Series([run.info.status for run in runs], dtype="str"),
        # method and seed are params by convention; the provenance tags are the fallback.
        "method": natural(run.data.params.get("method", run.data.tags.get("sweeper.method")) for run in runs),
        "seed": natural(run.data.params.get("seed", run.data.tags.get("sweeper.seed")) for run in runs),
        "config_hash": pd.Series([run.data.tags.get("sweeper.config_hash") for run in runs], dtype="str"),
        "duration_s": pd.Series([_duration(run) for run in runs], dtype="float64"),
        # The reference method's name on a reference trial (``reference: [...]``), else None.
        "reference": pd.Series([run.data.tags.get(REFERENCE_TAG) for run in runs], dtype="object"),
    }
    for name in params:
        columns[name] = natural(run.data.params.get(name) for run in runs)
    for name in metrics:
        columns[name] = pd.Series([run.data.metrics.get(name, math.nan) for run in runs], dtype="float64")
    frame = pd.DataFrame(columns) if runs else pd.DataFrame({c: pd.Series(dtype="object") for c in BASE_COLUMNS})
    frame.attrs.update(
        sweep=sweep, parent_run_id=parent.info.run_id, params=["method", "seed", *params], metrics=metrics
    )
    if best and runs:
        if best is True:  # the sweep's objective and report metrics
            tags = parent.data.tags
            wanted = [
                (_json_tag(tags, "sweeper.objective") or {}).get("metric"),
                *((_json_tag(tags, "sweeper.report") or {}).get("metrics") or []),
            ]
            best = [m for m in dict.fromkeys(wanted) if m in metrics]
        add_best(frame, list(best), launch=launch)
    return frame


def _duration(run: Any) -> float:
    """Seconds from the run's start to its end (to now while it runs)."""
    end = run.info.end_time or int(time.time() * 1000)
    return (end - run.info.start_time) / 1000 if run.info.start_time else math.nan


def add_best(
    frame: pd.DataFrame, metrics: list[str], tracking_uri: str | None = None, launch: Launch | None = None
) -> pd.DataFrame:
    """Add ``best/<metric>`` columns: the best value over each trial's epochs (max for accuracies,
    min for ECE / NLL), read from the metric histories (in bulk; the runs from ``launch`` if given)."""
    from sweeper.tables.ablation import default_mode

    client = launch.client if launch is not None else client_of(tracking_uri)[0]
    run_ids = list(frame["run_id"])
    runs = runs_by_id(client, run_ids, launch)
    found = bulk_reads.histories(client, {r: metrics for r in run_ids}, bulk=launch is None or launch.bulk)
    for metric in metrics:
        pick = max if default_mode(metric) == "max" else min
        values = []
        for run_id in run_ids:
            summary = summary_step_of(runs[run_id])
            history = [value for step, value, _ in found[run_id, metric] if step != summary]
            values.append(pick(history) if history else math.nan)
        frame[f"best/{metric}"] = pd.Series(values, index=frame.index, dtype="float64")
    return frame


def load_history(
    sweep: str,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    metrics: list[str] | None = None,
    bulk: bool = True,
) -> pd.DataFrame:
    """Long frame ``run_id, trial_id, metric, step, value`` of every value logged per epoch (for
    plots); the summary step after the last epoch (the selected epoch's values) is left out.

    ``metrics`` limits the metrics fetched. The histories come in bulk, a page of runs per query
    (:mod:`sweeper.tracking.bulk_reads`); ``bulk=False`` makes one MLflow call per run and metric.
    """
    return history_of(read_launch(sweep, tracking_uri, experiment, parent_run_id, bulk), metrics)


def history_of(launch: Launch, metrics: list[str] | None = None) -> pd.DataFrame:
    """:func:`load_history`'s frame of a launch already read."""
    wanted = {
        run.info.run_id: [key for key in sorted(run.data.metrics) if metrics is None or key in metrics]
        for run in launch.trials
    }
    found = bulk_reads.histories(launch.client, wanted, bulk=launch.bulk)
    records = []
    for run in launch.trials:
        summary_step = summary_step_of(run)
        run_id, trial = run.info.run_id, trial_id(run)
        for key in wanted[run_id]:
            for step, value, timestamp in found[run_id, key]:
                if step != summary_step:
                    records.append((run_id, trial, key, step, value, timestamp))
    frame = pd.DataFrame(records, columns=["run_id", "trial_id", "metric", "step", "value", "timestamp"])
    frame = frame.astype({"step": "int64", "value": "float64", "timestamp": "int64"})
    # A retried trial may log a step twice; the later write is the one the run kept going from.
    frame = frame.sort_values(["trial_id", "metric", "step", "timestamp"], kind="stable")
    frame = frame.drop_duplicates(["run_id", "metric", "step"], keep="last").drop(columns="timestamp")
    return frame.reset_index(drop=True)


def _json_tag(tags: dict[str, str], key: str) -> Any:
    try:
        return json.loads(tags[key]) if key in tags else None
    except json.JSONDecodeError:
        return None  # a hand-edited or truncated tag: treat as absent rather than fail the report


def sweep_meta(
    sweep: str, tracking_uri: str | None = None, experiment: str | None = None, parent_run_id: str | None = None
) -> dict[str, Any]:
    """The parent run's decoded tags: report, objective (the first), objectives, posthoc, search_keys,
    config_hash, ids and status."""
    client, parent = resolve_parent(sweep, tracking_uri, experiment, parent_run_id)
    return {**meta_of(client, parent), "sweep": sweep}


def meta_of(client: MlflowClient, parent: Any) -> dict[str, Any]:
    """:func:`sweep_meta` of a parent run already found."""
    tags = parent.data.tags
    experiment_obj = client.get_experiment(parent.info.experiment_id)
    return {
        "sweep": tags.get("sweeper.sweep"),
        "parent_run_id": parent.info.run_id,
        "status": parent.info.status,
        "start_time": parent.info.start_time,
        "experiment": experiment_obj.name,
        "experiment_id": parent.info.experiment_id,
        "config_hash": tags.get("sweeper.config_hash"),
        "report": _json_tag(tags, "sweeper.report"),
        "objective": _json_tag(tags, "sweeper.objective"),
        # Every objective of a multi-objective sweep; a sweep from before they existed has one.
        "objectives": _json_tag(tags, "sweeper.objectives") or [o for o in [_json_tag(tags, "sweeper.objective")] if o],
        "posthoc": _json_tag(tags, "sweeper.posthoc"),
        "search_keys": _json_tag(tags, "sweeper.search_keys"),
        "references": _json_tag(tags, "sweeper.references") or [],
        "searcher": tags.get("sweeper.searcher"),
        "search_dims": _json_tag(tags, "sweeper.search_dims"),
        "total_trials": int(tags["sweeper.total_trials"]) if tags.get("sweeper.total_trials", "").isdigit() else None,
        "end_time": parent.info.end_time,
    }


history = load_history  # the name the README uses: ``sweeper.tracking.results.history("ablation-L")``
