"""16 trials logging at once, each a separate process with its own ``TrialRun`` under one parent
run: to one sqlite store, and to an MLflow server backed by PostgreSQL. No writer may see an error
and every value must be in the store, once, with the value written.

16 writers, half of the 32 that `sweeper validate` allows before it warns (measured by
bench/bench_many_writers.py): 32 processes importing MLflow would take 7 GB and minutes on CI's 2
cores. The bench logs 200 steps per writer; here 50 keep each test near a minute and a half (the
imports are most of it) while the writers still overlap for the whole run: 800 log_batch calls
contend for the one store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import mlflow_server, postgres_server
from writers import WritersResult, run_writers

pytestmark = pytest.mark.slow

WRITERS, STEPS, METRICS = 16, 50, 10


def assert_nothing_lost(result: WritersResult) -> None:
    assert result.errors == []
    assert (result.runs, result.finished) == (WRITERS, WRITERS)
    assert result.logged == WRITERS * STEPS * METRICS and result.lost == 0
    assert (result.duplicates, result.wrong_values) == (0, 0)


def test_16_writers_to_one_sqlite_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert_nothing_lost(run_writers(uri, "writers", WRITERS, STEPS, METRICS, timeout_s=300))


def test_16_writers_to_a_server_on_postgresql(tmp_path: Path) -> None:
    with postgres_server() as database, mlflow_server(tmp_path, backend_store_uri=database) as uri:
        assert_nothing_lost(run_writers(uri, "writers", WRITERS, STEPS, METRICS, timeout_s=300))
