"""Read a sweep back from MLflow as pandas DataFrames.

:mod:`sweeper.tracking.runs` logs one parent run per sweep launch (tag ``sweeper.kind=sweep``) and
one child run per trial (tag ``mlflow.parentRunId``). This module finds the sweep's parent run (the
most recent launch unless a run id is given) and turns its children into a tidy wide frame, a long
metric-history frame, and the decoded sweep metadata. It only reads; it never creates a store.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from sweeper.spec.references import REFERENCE_TAG
from sweeper.tables.frontier import frontier  # noqa: F401 - results.frontier(df, ...): the front with WiSE points
from sweeper.tables.pareto import pareto  # noqa: F401 - results.pareto(df, ...): the API next to load
from sweeper.tables.sessions import accuracy_matrix  # noqa: F401 - results.accuracy_matrix(df.iloc[0])
from sweeper.tracking.runs import summary_step_of
from sweeper.tracking.sweep_runs import latest_launch, trial_id, trials_of, unknown_experiment
from sweeper.tracking.uri import check_readable_uri, redact_uri, resolve_uri
from trainables.errors import InputError

BASE_COLUMNS = ["sweep", "run_id", "trial_id", "status", "method", "seed", "config_hash", "duration_s", "reference"]
# MLflow stores every param as a string; these spellings mean "not set" (str(None), empty).
_MISSING = {"", "None", "none", "null"}


def default_tracking_uri() -> str:
    """The store ``sweeper launch`` writes when the sweep file names none."""
    return resolve_uri(None)


def _paged(fetch: Callable[[str | None], Any]) -> list[Any]:
    """All pages of an MLflow ``PagedList`` search."""
    items: list = []
    token: str | None = None
    while True:
        page = fetch(token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def _client(tracking_uri: str | None) -> tuple[MlflowClient, str]:
    uri = check_readable_uri(tracking_uri or default_tracking_uri())
    try:  # first contact: a wrong host, a non-MLflow database, a missing driver all surface here
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as error:  # any failure here means the URI is unusable
        detail = str(error).replace(uri, redact_uri(uri))
        raise InputError(
            "--tracking-uri", f"cannot read MLflow store {redact_uri(uri)}: {type(error).__name__}: {detail}"
        ) from error
    return client, uri


def _parent_runs(client: MlflowClient, experiment_ids: list[str]) -> list[Run]:
    """Every sweep parent run in these experiments, newest first."""
    if not experiment_ids:
        return []
    return _paged(
        lambda token: client.search_runs(
            experiment_ids, "tags.`sweeper.kind` = 'sweep'", order_by=["attributes.start_time DESC"], page_token=token
        )
    )


def resolve_parent(
    sweep: str, tracking_uri: str | None = None, experiment: str | None = None, parent_run_id: str | None = None
) -> tuple[MlflowClient, Run]:
    """The client and the parent run of ``sweep`` (the latest launch unless ``parent_run_id``)."""
    client, uri = _client(tracking_uri)
    if parent_run_id:
        try:
            run = client.get_run(parent_run_id)
        except Exception as error:  # MLflow raises its own type for "not found"
            raise InputError("--parent-run", f"no run {parent_run_id!r} in {uri}") from error
        if run.data.tags.get("sweeper.kind") != "sweep" or run.data.tags.get("sweeper.sweep") != sweep:
            raise InputError("--parent-run", f"run {parent_run_id} is not a parent run of sweep {sweep!r}")
        return client, run
    if experiment:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise unknown_experiment(
                experiment, uri, (e.name for e in _paged(lambda t: client.search_experiments(page_token=t)))
            )
        experiment_ids = [found.experiment_id]
    else:  # several sweeps may share an experiment, and its name may differ from the sweep's
        experiment_ids = [e.experiment_id for e in _paged(lambda t: client.search_experiments(page_token=t))]
    where = f"experiment {experiment!r} of {uri}" if experiment else uri
    return client, latest_launch(_parent_runs(client, experiment_ids), sweep, where)


def _children(client: MlflowClient, parent: Run) -> list[Run]:
    return trials_of(
        _paged(
            lambda token: client.search_runs(
                [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", page_token=token
            )
        )
    )


def open_store(tracking_uri: str | None = None) -> MlflowClient:
    """A client of the MLflow store, checked to be readable (InputError otherwise)."""
    return _client(tracking_uri)[0]


def sweep_parents(client: MlflowClient) -> list[Run]:
    """Every sweep launch (parent run) in the store, newest first."""
    experiments = [e.experiment_id for e in _paged(lambda t: client.search_experiments(page_token=t))]
    return _parent_runs(client, experiments)


def trial_runs(client: MlflowClient, parent: Run) -> list[Run]:
    """The trial (child) runs of one sweep launch."""
    return _children(client, parent)


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
) -> pd.DataFrame:
    """One row per trial of the sweep's latest launch: ids, typed params, final metric values.

    Columns: ``sweep, run_id, trial_id, status, method, seed, config_hash, duration_s,
    reference`` (the method of a reference trial, else None), then every
    param (sorted by name, cast by :func:`natural`), then every metric (sorted, float; the latest
    logged value: for a finished trial, its summary, the epoch selected on validation, with
    ``last/<metric>`` for the last epoch and ``best_epoch``). ``best=True`` adds ``best/<metric>``
    (best epoch) for the sweep's objective and report metrics, or ``best=[...]`` for the metrics
    listed. ``frame.attrs`` holds ``params``, ``metrics`` (the column names of each kind), ``sweep``
    and ``parent_run_id``.
    """
    client, parent = resolve_parent(sweep, tracking_uri, experiment, parent_run_id)
    runs = _children(client, parent)
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
        add_best(frame, list(best), tracking_uri)
    return frame


def _duration(run: Run) -> float:
    """Seconds from the run's start to its end (to now while it runs)."""
    end = run.info.end_time or int(time.time() * 1000)
    return (end - run.info.start_time) / 1000 if run.info.start_time else math.nan


def add_best(frame: pd.DataFrame, metrics: list[str], tracking_uri: str | None = None) -> pd.DataFrame:
    """Add ``best/<metric>`` columns: the best value over each trial's epochs (max for accuracies,
    min for ECE / NLL), read from the metric histories."""
    from sweeper.tables.ablation import default_mode

    client, _ = _client(tracking_uri)
    for metric in metrics:
        pick = max if default_mode(metric) == "max" else min
        values = []
        for run_id in frame["run_id"]:
            summary = summary_step_of(client.get_run(run_id))
            history = [m.value for m in client.get_metric_history(run_id, metric) if m.step != summary]
            values.append(pick(history) if history else math.nan)
        frame[f"best/{metric}"] = pd.Series(values, index=frame.index, dtype="float64")
    return frame


def load_history(
    sweep: str,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    metrics: list[str] | None = None,
) -> pd.DataFrame:
    """Long frame ``run_id, trial_id, metric, step, value`` of every value logged per epoch (for
    plots); the summary step after the last epoch (the selected epoch's values) is left out.

    ``metrics`` limits the metrics fetched (one MLflow call per run and metric).
    """
    client, parent = resolve_parent(sweep, tracking_uri, experiment, parent_run_id)
    records = []
    for run in _children(client, parent):
        summary_step = summary_step_of(run)
        for key in sorted(run.data.metrics):
            if metrics is not None and key not in metrics:
                continue
            for point in client.get_metric_history(run.info.run_id, key):
                if point.step == summary_step:
                    continue
                records.append((run.info.run_id, trial_id(run), key, point.step, point.value, point.timestamp))
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
    tags = parent.data.tags
    experiment_obj = client.get_experiment(parent.info.experiment_id)
    return {
        "sweep": sweep,
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
