"""Many runs' metric histories in a few reads, whatever the store behind the client.

``MlflowClient.get_metric_history`` reads one run's metric per call: a sweep of 10,000 trials
that logged 40 metrics each is 400,000 calls (about 3 ms each on sqlite, 9 ms through a server).
:func:`histories` asks per page of runs instead, through the store the client already holds:

- SQL stores (sqlite, PostgreSQL, ...): MLflow's own ``SqlAlchemyStore`` session and its
  ``SqlMetric`` model, one SELECT per :data:`SQL_PAGE` runs for every key at once;
- a tracking server: its ``metrics/get-history-bulk`` endpoint (the one MLflow's UI draws its
  charts from; MLflow 3.17 has no bulk read in the public API), one request per
  :data:`REST_PAGE` runs and metric key, through MLflow's own REST helper (credentials, TLS
  settings and retries as the client's);
- anything else, a server without that endpoint, or ``bulk=False``: one
  ``get_metric_history`` call per run and key, as before.

Every path returns each run's points in the order ``get_metric_history`` returns them (timestamp,
step, value), so callers build exactly the frames they built from the per-run calls.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mlflow.tracking import MlflowClient

# Run ids per SELECT: well under sqlite's 32,766 bound parameters, and a page of rows (500 runs x
# 40 metrics x a few epochs) stays a few MB.
SQL_PAGE = 500
# The server's own limits for get-history-bulk (mlflow/server/handlers.py): 100 run ids and
# 25,000 points per request. A full page may have been cut short: its runs are read one by one.
REST_PAGE = 100
REST_MAX_RESULTS = 25_000
REST_THREADS = 4  # requests in flight at once
REST_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"

Point = tuple[int, float, int]  # step, value, timestamp
Histories = dict[tuple[str, str], list[Point]]


def histories(client: MlflowClient, wanted: Mapping[str, Iterable[str]], bulk: bool = True) -> Histories:
    """Every point of each ``(run id, key)`` that ``wanted`` (run id -> keys) asks for; a pair
    never logged maps to an empty list."""
    pairs = {run_id: sorted(set(keys)) for run_id, keys in wanted.items()}
    found: Histories = {(run_id, key): [] for run_id, keys in pairs.items() for key in keys}
    if not found:
        return found
    store = _store(client) if bulk else None
    if _is_sql_store(store):
        _read_sql(store, pairs, found)
    elif not (_is_rest_store(store) and _read_rest(client, store, pairs, found)):
        _read_per_run(client, pairs, found)
    return found


def _store(client: MlflowClient) -> Any:
    """The tracking store behind ``client`` (MLflow caches one per URI), or None if unreachable."""
    try:
        from mlflow.tracking._tracking_service.utils import _get_store

        return _get_store(client.tracking_uri)
    except Exception:  # noqa: BLE001 - a private helper: if it moves, the per-run reads still work
        return None


def _is_sql_store(store: Any) -> bool:
    # Look the class up only where MLflow already imported it: importing the SQL store (about a
    # second) just to learn that a REST store is not one would slow every server read down.
    module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")
    return module is not None and isinstance(store, module.SqlAlchemyStore)


def _is_rest_store(store: Any) -> bool:
    module = sys.modules.get("mlflow.store.tracking.rest_store")
    return module is not None and isinstance(store, module.RestStore)


def _pages(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _read_sql(store: Any, pairs: dict[str, list[str]], found: Histories) -> None:
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    keys = sorted({key for keys in pairs.values() for key in keys})
    m = SqlMetric
    # get_metric_history's own order within a run and key (sqlalchemy_store.get_metric_history)
    order = (m.run_uuid, m.key, m.timestamp, m.step, m.value)
    with store.ManagedSessionMaker() as session:
        for page in _pages(list(pairs), SQL_PAGE):
            query = session.query(m.run_uuid, m.key, m.step, m.value, m.is_nan, m.timestamp).filter(
                m.run_uuid.in_(page)
            )
            if len(keys) <= SQL_PAGE:  # else every key of the page's runs, filtered below
                query = query.filter(m.key.in_(keys))
            for run_id, key, step, value, is_nan, timestamp in query.order_by(*order):
                points = found.get((run_id, key))
                if points is not None:  # a key the run logged after the caller read its runs
                    # MLflow stores NaN as 0 with is_nan set (SqlMetric.to_mlflow_entity)
                    points.append((int(step), math.nan if is_nan else float(value), int(timestamp)))


def _read_rest(client: MlflowClient, store: Any, pairs: dict[str, list[str]], found: Histories) -> bool:
    """The bulk endpoint, page by page; False (nothing read) when the server does not offer it."""
    from concurrent.futures import ThreadPoolExecutor

    by_key: dict[str, list[str]] = {}
    for run_id, keys in pairs.items():
        for key in keys:
            by_key.setdefault(key, []).append(run_id)
    jobs = [(key, page) for key, run_ids in by_key.items() for page in _pages(run_ids, REST_PAGE)]
    first = _fetch(store, *jobs[0])
    if first is None:
        return False  # an older or another kind of server: no bulk endpoint
    # Each request is mostly the server's own overhead (about 10 ms for a few hundred points):
    # REST_THREADS in flight keep a server with several workers busy.
    with ThreadPoolExecutor(REST_THREADS) as pool:
        answers = [first, *pool.map(lambda job: _fetch(store, *job), jobs[1:])]
    for (key, page), points in zip(jobs, answers, strict=True):
        if points is None or len(points) >= REST_MAX_RESULTS:  # maybe cut short: these runs one by one
            for run_id in page:
                found[run_id, key] = _one(client, run_id, key)
            continue
        for point in points:
            # NaN and infinities may come as strings (JSON has none): float() reads both forms
            found[point["run_id"], key].append((int(point["step"]), float(point["value"]), int(point["timestamp"])))
    return True


def _fetch(store: Any, key: str, page: list[str]) -> list[dict[str, Any]] | None:
    """One get-history-bulk answer: the points of ``key`` for the runs of ``page``; None on 404."""
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    params = {"run_id": page, "metric_key": key, "max_results": REST_MAX_RESULTS}
    response = http_request(store.get_host_creds(), REST_ENDPOINT, "GET", params=params)
    if response.status_code == 404:
        return None
    return verify_rest_response(response, REST_ENDPOINT).json().get("metrics", [])


def _one(client: MlflowClient, run_id: str, key: str) -> list[Point]:
    history = client.get_metric_history(run_id, key)
    return [(point.step, point.value, point.timestamp) for point in history]


def _read_per_run(client: MlflowClient, pairs: dict[str, list[str]], found: Histories) -> None:
    for run_id, keys in pairs.items():
        for key in keys:
            found[run_id, key] = _one(client, run_id, key)
