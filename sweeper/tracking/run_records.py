"""The light run records that ``sweeper status`` reads (shaped like MLflow's: ``run.info.status``,
``run.data.metrics``), the interface of a store that yields them, and the one-line error for a
store that cannot be read. The stores: ``run_store`` (SQL tables, and ``open_store``) and
``rest_store`` (a tracking server).
"""

from __future__ import annotations

import json
import urllib.error
from dataclasses import dataclass
from typing import Any, Protocol

from sweeper.tracking.uri import redact_uri
from trainables.errors import InputError


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_name: str | None
    experiment_id: str
    status: str
    start_time: int | None
    end_time: int | None


@dataclass(frozen=True)
class RunData:
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]


@dataclass(frozen=True)
class Run:
    """One MLflow run: the attributes of ``mlflow.entities.Run`` that sweeper reads."""

    info: RunInfo
    data: RunData


@dataclass(frozen=True)
class Keys:
    """Which tags, metrics and params of each run to read (None: all of that kind). ``sweeper
    status`` reads only what it prints: at 10,000 trials the rest is most of the rows."""

    tags: frozenset[str] | None = None
    metrics: frozenset[str] | None = None
    params: frozenset[str] | None = None


ALL = Keys()


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str


class RunStore(Protocol):
    uri: str

    def experiments(self) -> list[Experiment]:
        """The active experiments."""

    def experiment_named(self, name: str) -> Experiment | None:
        """The experiment of this name, deleted or not (as ``MlflowClient.get_experiment_by_name``)."""

    def runs_tagged(self, experiment_ids: list[str], key: str, value: str, keys: Keys = ALL) -> list[Run]:
        """The active runs of these experiments whose tag ``key`` is ``value``, newest first, with
        the tags, metrics and params that ``keys`` names."""


def make_run(
    run_id: str,
    name: str | None,
    experiment_id: Any,
    status: str,
    start: Any,
    end: Any,
    tags: dict[str, str],
    metrics: dict[str, float],
    params: dict[str, str],
) -> Run:
    # As MLflow: a run created without a name is named by its mlflow.runName tag; no end time is None.
    info = RunInfo(
        run_id,
        name or tags.get("mlflow.runName"),
        str(experiment_id),
        status,
        None if start is None else int(start),
        int(end) if end else None,
    )
    return Run(info, RunData(tags, metrics, params))


def chosen(values: dict[str, Any], names: frozenset[str] | None) -> dict[str, Any]:
    """``values`` limited to ``names`` (all of them when None)."""
    return values if names is None else {k: v for k, v in values.items() if k in names}


def unreadable(uri: str, error: BaseException) -> InputError:
    """One line naming the store and the cause (SQLAlchemy would append its SQL and a help link)."""
    if isinstance(error, urllib.error.HTTPError):
        try:  # MLflow's error body: {"error_code": ..., "message": ...}
            cause = f"HTTP {error.code}: {json.loads(error.read()).get('message') or error.reason}"
        except (ValueError, OSError):
            cause = f"HTTP {error.code}: {error.reason}"
    else:
        inner = getattr(error, "orig", None) or error  # the driver's own error inside SQLAlchemy's
        lines = str(inner).strip().splitlines()
        cause = f"{type(inner).__name__}: {lines[0] if lines else ''}"
    return InputError(
        "--tracking-uri", f"cannot read MLflow store {redact_uri(uri)}: " + cause.replace(uri, redact_uri(uri))
    )
