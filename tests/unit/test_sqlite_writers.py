"""Many trials writing to one sqlite store: a locked store's writes are retried (and only those),
and `sweeper validate` / `sweeper launch` warn, without failing, when more trials may log at once
than sqlite was measured to hold."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.exceptions import MlflowException

from sweeper.cli import main
from sweeper.spec.concurrency import SQLITE_WRITERS, concurrent_trials, sqlite_writers_warning
from sweeper.spec.loading import from_mapping
from sweeper.tracking.locked import ATTEMPTS, is_locked, retry_locked


def locked_error() -> MlflowException:
    """sqlite's lock error as MLflow raises it: an MlflowException from SQLAlchemy's error."""
    try:
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as cause:
            raise MlflowException("(raised as a result of Query-invoked autoflush)") from cause
    except MlflowException as error:
        return error


def test_a_locked_write_is_retried_with_growing_waits_until_it_succeeds() -> None:
    calls, waits = [], []

    def write() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise locked_error()
        return "written"

    assert retry_locked(write, sleep=waits.append) == "written"
    assert len(calls) == 4 and len(waits) == 3
    assert waits[0] < waits[2]  # backoff: the third wait's floor is above the first's ceiling


def test_a_store_locked_past_every_attempt_raises_the_lock_error() -> None:
    calls: list[int] = []

    def write() -> None:
        calls.append(1)
        raise locked_error()

    with pytest.raises(MlflowException) as raised:
        retry_locked(write, sleep=lambda _: None)
    assert len(calls) == ATTEMPTS and is_locked(raised.value)


def test_a_server_whose_connection_pool_is_exhausted_is_retried() -> None:
    # As MLflow's REST client raises the server's HTTP 400 for a pool timed out in log_batch.
    error = MlflowException(
        "BAD_REQUEST: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00"
    )
    calls: list[int] = []

    def write() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "written"

    assert is_locked(error) and retry_locked(write, sleep=lambda _: None) == "written" and len(calls) == 2


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def write() -> None:
        calls.append(1)
        raise MlflowException("Run 'abc' not found")

    with pytest.raises(MlflowException, match="not found"):
        retry_locked(write, sleep=lambda _: None)
    assert calls == [1] and not is_locked(MlflowException("Run 'abc' not found"))


def sweep_file(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """A grid of 40 trials tracked in a sqlite file under ``tmp_path``."""
    return {
        "name": "many",
        "method": "ft",
        "model": "zoo/tiny-clip-v1",
        "data": {"id": "photo", "ood": ["sketch"]},
        "search": {"lr": {"grid": [1e-5 * (i + 1) for i in range(40)]}},
        "seeds": [0],
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        **changes,
    }


def validate(tmp_path: Path, capsys: pytest.CaptureFixture, **changes: Any) -> tuple[int, str, str]:
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(sweep_file(tmp_path, **changes), sort_keys=False))
    capsys.readouterr()
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_warns_when_max_concurrent_exceeds_the_sqlite_writers(tmp_path: Path, capsys) -> None:
    code, out, err = validate(tmp_path, capsys, max_concurrent=SQLITE_WRITERS + 1)
    assert code == 0 and "valid" in out  # a warning, not an error
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweeper: warning: ")
    assert f"max_concurrent: {SQLITE_WRITERS + 1};" in lines[0]
    assert str(tmp_path / "mlflow.db") in lines[0]


def test_validate_is_silent_at_the_measured_count(tmp_path: Path, capsys) -> None:
    code, _, err = validate(tmp_path, capsys, max_concurrent=SQLITE_WRITERS)
    assert code == 0 and err == ""


def test_no_warning_for_a_server_store_or_fewer_trials_than_writers(tmp_path: Path) -> None:
    spec = from_mapping(sweep_file(tmp_path, max_concurrent=40))
    assert sqlite_writers_warning(spec) is not None
    spec.tracking.uri = "http://127.0.0.1:5000"  # set after the checks: they would ask that server for /health
    assert sqlite_writers_warning(spec) is None
    few = from_mapping(sweep_file(tmp_path, max_concurrent=40, search={"lr": {"grid": [1e-4, 1e-3]}}))
    assert concurrent_trials(few) == 2 and sqlite_writers_warning(few) is None


def test_unset_max_concurrent_counts_the_trials_the_cpus_hold(tmp_path: Path) -> None:
    spec = from_mapping(sweep_file(tmp_path, resources={"cpu": 2}))
    assert concurrent_trials(spec, cpus=128) == 40  # 64 fit, but the sweep has 40 trials
    assert concurrent_trials(spec, cpus=64) == SQLITE_WRITERS == 32
    assert sqlite_writers_warning(spec, cpus=64) is None
    warning = sqlite_writers_warning(spec, cpus=128)
    assert warning is not None and "unset, so up to 40 trials at once on 128 CPUs" in warning


def test_launch_warns_before_it_starts_and_goes_on(tmp_path: Path, capsys, monkeypatch) -> None:
    import sweeper.run.launch as launching

    started: list[str] = []
    monkeypatch.setattr(launching, "launch", lambda spec, storage=None: started.append(spec.name) or 0)
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(sweep_file(tmp_path, max_concurrent=40), sort_keys=False))
    assert main(["launch", str(path)]) == 0
    assert started == ["many"]
    assert "sweeper: warning: " in capsys.readouterr().err
