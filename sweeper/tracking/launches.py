"""Find a sweep's launch in MLflow with MlflowClient: its parent run and its trial runs.

:mod:`sweeper.tracking.results` builds its frames from what this module reads. A :class:`Launch`
holds the client, the parent run and the trial runs, read once, so that a report that needs the
wide frame, the learning curves and the completion order reads the trial runs once, not once each.

Trial runs are read in bulk (``bulk=True``): through :mod:`sweeper.tracking.run_store` (MLflow's
tables with one query per table, or the server's ``runs/search`` in pages of 1,000), which returns
the same runs as MlflowClient's search (tests/unit/test_run_store.py checks it) about eight times
faster on sqlite. ``bulk=False`` reads them with MlflowClient, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from sweeper.tracking.sweep_runs import latest_launch, trials_of, unknown_experiment
from sweeper.tracking.uri import check_readable_uri, redact_uri, resolve_uri
from trainables.errors import InputError


@dataclass(frozen=True)
class Launch:
    """One launch of a sweep as read from MLflow."""

    sweep: str
    client: MlflowClient
    parent: Run
    trials: list[Any]  # mlflow.entities.Run, or run_records.Run (same attributes) when read in bulk
    bulk: bool = True  # whether later reads (metric histories) may use the bulk paths


def default_tracking_uri() -> str:
    """The store ``sweeper launch`` writes when the sweep file names none."""
    return resolve_uri(None)


def paged(fetch: Callable[[str | None], Any]) -> list[Any]:
    """All pages of an MLflow ``PagedList`` search."""
    items: list = []
    token: str | None = None
    while True:
        page = fetch(token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def client_of(tracking_uri: str | None) -> tuple[MlflowClient, str]:
    """A client of the store and its URI, checked to be readable (InputError otherwise)."""
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
    return paged(
        lambda token: client.search_runs(
            experiment_ids, "tags.`sweeper.kind` = 'sweep'", order_by=["attributes.start_time DESC"], page_token=token
        )
    )


def resolve_parent(
    sweep: str, tracking_uri: str | None = None, experiment: str | None = None, parent_run_id: str | None = None
) -> tuple[MlflowClient, Run]:
    """The client and the parent run of ``sweep`` (the latest launch unless ``parent_run_id``)."""
    client, uri = client_of(tracking_uri)
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
                experiment, uri, (e.name for e in paged(lambda t: client.search_experiments(page_token=t)))
            )
        experiment_ids = [found.experiment_id]
    else:  # several sweeps may share an experiment, and its name may differ from the sweep's
        experiment_ids = [e.experiment_id for e in paged(lambda t: client.search_experiments(page_token=t))]
    where = f"experiment {experiment!r} of {uri}" if experiment else uri
    return client, latest_launch(_parent_runs(client, experiment_ids), sweep, where)


def trial_runs(client: MlflowClient, parent: Run) -> list[Run]:
    """The trial (child) runs of one sweep launch, read with MlflowClient."""
    return trials_of(
        paged(
            lambda token: client.search_runs(
                [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", page_token=token
            )
        )
    )


def bulk_trial_runs(client: MlflowClient, parent: Run) -> list[Any]:
    """The same trial runs, read through :mod:`sweeper.tracking.run_store` where it reads the store."""
    from sweeper.tracking import run_store, sweep_runs

    scheme = client.tracking_uri.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme not in (*run_store.SQL_SCHEMES, "http", "https"):
        return trial_runs(client, parent)
    return sweep_runs.trial_runs(run_store.open_store(client.tracking_uri), parent)


def read_launch(
    sweep: str,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    bulk: bool = True,
) -> Launch:
    """The sweep's latest launch (or ``parent_run_id``) with its trial runs."""
    client, parent = resolve_parent(sweep, tracking_uri, experiment, parent_run_id)
    trials = bulk_trial_runs(client, parent) if bulk else trial_runs(client, parent)
    return Launch(sweep, client, parent, trials, bulk)


def sweep_parents(client: MlflowClient) -> list[Run]:
    """Every sweep launch (parent run) in the store, newest first."""
    experiments = [e.experiment_id for e in paged(lambda t: client.search_experiments(page_token=t))]
    return _parent_runs(client, experiments)


def runs_by_id(client: MlflowClient, run_ids: list[str], launch: Launch | None = None) -> dict[str, Any]:
    """Each run of ``run_ids``: from ``launch`` where it holds it, else ``client.get_run``."""
    known = {run.info.run_id: run for run in launch.trials} if launch is not None else {}
    return {run_id: known.get(run_id) or client.get_run(run_id) for run_id in run_ids}
