"""Read runs from an MLflow tracking store without importing MLflow.

``sweeper status`` must answer in about a second, and MLflow's client alone takes 1.4 s to import
(2.6 s with its SQL store). So this module reads MLflow's own tables (sqlite, PostgreSQL, through
SQLAlchemy Core) or a tracking server's public REST API (through urllib), read-only, and returns
light runs shaped like MLflow's (``run.info.status``, ``run.data.metrics``). Its searches match
``MlflowClient``'s defaults: active experiments and runs only, newest first, each metric's latest
value. A store that is not there is never created; any failure to read is one ``InputError``.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from sweeper.tracking.rest_store import RestStore
from sweeper.tracking.run_records import ALL, Experiment, Keys, Run, RunStore, make_run, unreadable
from sweeper.tracking.uri import check_readable_uri, redact_uri, resolve_uri
from trainables.errors import InputError

# The database families of MLflow's SQL store, with any driver (postgresql+psycopg2://...).
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


class SqlStore:
    """MLflow's tables (``mlflow/store/tracking/dbmodels/models.py``) read with SQLAlchemy Core."""

    def __init__(self, uri: str) -> None:
        import sqlalchemy as sa  # here, not above: the REST path does without its import

        self.uri, self.sa = uri, sa
        try:
            if uri.startswith("sqlite:"):
                self.engine = sa.create_engine("sqlite://", creator=_read_only_sqlite(uri))
            else:  # a missing driver (postgresql:// wants psycopg 3) fails here; libpq would wait
                # minutes for a host that does not answer unless given a connect timeout
                timeout = {"connect_timeout": 10} if uri.startswith("postgresql") else {}
                self.engine = sa.create_engine(uri, connect_args=timeout)
        except (ImportError, sa.exc.SQLAlchemyError) as error:
            raise unreadable(uri, error) from error
        col, table = sa.column, sa.table
        self.experiments_t = table("experiments", col("experiment_id"), col("name"), col("lifecycle_stage"))
        self.runs_t = table(
            "runs",
            col("run_uuid"),
            col("name"),
            col("experiment_id"),
            col("status"),
            col("start_time"),
            col("end_time"),
            col("lifecycle_stage"),
        )
        self.tags_t = table("tags", col("run_uuid"), col("key"), col("value"))
        self.params_t = table("params", col("run_uuid"), col("key"), col("value"))
        self.metrics_t = table("latest_metrics", col("run_uuid"), col("key"), col("value"), col("is_nan"))

    def _rows(self, query: Any) -> list[Any]:
        try:
            with self.engine.connect() as connection:  # closed without a commit: nothing is written
                return list(connection.execute(query))
        except self.sa.exc.SQLAlchemyError as error:  # a non-MLflow database, a dead server, a lock
            raise unreadable(self.uri, error) from error

    def _experiments(self, condition: Any) -> list[Experiment]:
        e = self.experiments_t
        return [
            Experiment(str(i), name)
            for i, name in self._rows(self.sa.select(e.c.experiment_id, e.c.name).where(condition))
        ]

    def experiments(self) -> list[Experiment]:
        return self._experiments(self.experiments_t.c.lifecycle_stage == "active")

    def experiment_named(self, name: str) -> Experiment | None:
        return next(iter(self._experiments(self.experiments_t.c.name == name)), None)

    def runs_tagged(self, experiment_ids: list[str], key: str, value: str, keys: Keys = ALL) -> list[Run]:
        if not experiment_ids:
            return []
        sa, r, t = self.sa, self.runs_t, self.tags_t
        chosen = sa.select(r.c.run_uuid).where(
            r.c.experiment_id.in_([int(i) for i in experiment_ids]),
            r.c.lifecycle_stage == "active",
            r.c.run_uuid.in_(sa.select(t.c.run_uuid).where(t.c.key == key, t.c.value == value)),
        )
        runs = self._rows(
            sa.select(r.c.run_uuid, r.c.name, r.c.experiment_id, r.c.status, r.c.start_time, r.c.end_time)
            .where(r.c.run_uuid.in_(chosen))
            .order_by(r.c.start_time.desc(), r.c.run_uuid)
        )  # MLflow's order and tie-break
        # One query per table for all the runs, not one per run: a 10,000-trial sweep stays fast.
        ids = [row[0] for row in runs]
        tags, params, metrics = (
            self._values(table, chosen, ids, names)
            for table, names in ((t, keys.tags), (self.params_t, keys.params), (self.metrics_t, keys.metrics))
        )
        return [
            make_run(run_id, name, experiment, status, start, end, tags[run_id], metrics[run_id], params[run_id])
            for run_id, name, experiment, status, start, end in runs
        ]

    def _values(
        self, table: Any, chosen: Any, run_ids: list[str], names: frozenset[str] | None
    ) -> dict[str, dict[str, Any]]:
        """Each run's ``key: value`` pairs in ``table`` (tags, params or latest metrics), for the
        keys in ``names`` (every key when None)."""
        c = table.c
        found: dict[str, dict[str, Any]] = {run_id: {} for run_id in run_ids}
        if names is not None and not names:
            return found
        nan_column = [c.is_nan] if "is_nan" in c else []  # metrics: MLflow keeps NaN as 0 plus is_nan
        query = self.sa.select(c.run_uuid, c.key, c.value, *nan_column).where(c.run_uuid.in_(chosen))
        if names is not None:
            query = query.where(c.key.in_(sorted(names)))
        for run_id, key, value, *nan in self._rows(query):
            if run_id in found:  # else a run that started after the runs query: not part of this answer
                found[run_id][key] = value if not nan else float("nan") if nan[0] else float(value)
        return found


def _read_only_sqlite(uri: str) -> Any:
    """A connection factory that opens the sqlite file read-only: it never creates or changes it."""
    import sqlite3

    path = uri[len("sqlite:///") :].split("?", 1)[0] if uri.startswith("sqlite:///") else ""
    # sqlite:// and sqlite:///:memory: name an empty in-memory database, as for SQLAlchemy.
    target = (
        f"file:{urllib.parse.quote(str(Path(path).resolve()))}?mode=ro" if path not in ("", ":memory:") else ":memory:"
    )
    # 15 s: a running sweep may hold the write lock for a moment
    return lambda: sqlite3.connect(target, uri=True, timeout=15)


def open_store(tracking_uri: str | None = None) -> RunStore:
    """The store at ``tracking_uri`` (sqlite, PostgreSQL, MySQL, MS SQL or an http(s) tracking server;
    default ``sqlite:///<cwd>/mlflow.db``), checked to be readable by listing its experiments;
    ``InputError`` otherwise."""
    uri = check_readable_uri(resolve_uri(tracking_uri))  # the file store, a sqlite file that is not there
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme in ("http", "https"):
        store: RunStore = RestStore(uri)
    elif scheme in SQL_SCHEMES:
        store = SqlStore(uri)
    else:
        raise InputError(
            "--tracking-uri",
            f"cannot read MLflow store {redact_uri(uri)}: unsupported scheme "
            f"{scheme!r}; use sqlite:///path.db, postgresql+psycopg2://... or http://host:port",
        )
    store.experiments()  # first contact: a wrong host, a non-MLflow database surface here
    return store
