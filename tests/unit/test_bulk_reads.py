"""The bulk reads (``sweeper.tracking.bulk_reads``, ``launches.bulk_trial_runs``) return exactly what
MlflowClient's per-run calls returned: the same ``results.load`` frame (with ``best/*``), the same
``results.load_history`` frame, the same ``epochs_run``, point by point the same histories.

The store is one sweep of 500 trials written by tests/scale_store.py with MLflow's client, with the
cases a reader can get wrong (running, failed and reference trials, a trial without a summary step,
NaN values, a step logged twice, two points with one timestamp, metrics some epochs skip, deleted
runs). Three metrics and three epochs per trial are enough: the bulk paths group by run page and
by key, and nothing in them depends on how many keys or steps a run has beyond that; 500 trials
span several pages once the page size is lowered (``SQL_PAGE``), and five of the server's.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from scale_store import Shape, generate
from servers import mlflow_server

from sweeper.cli import main
from sweeper.commands import status
from sweeper.tracking import bulk_reads, results, sweep_runs
from sweeper.tracking.launch_reads import add_epochs_run
from sweeper.tracking.launches import read_launch

SHAPE = Shape(trials=500, metrics=3, epochs=3, variety=True)


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('bulk') / 'mlflow.db'}"
    generate(uri, "scale", SHAPE)
    return uri


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A running trial's duration counts to now: one now for both reads."""
    now = time.time()
    monkeypatch.setattr(results, "time", SimpleNamespace(time=lambda: now))


def same_frames(bulk: pd.DataFrame, per_run: pd.DataFrame) -> None:
    assert_frame_equal(bulk, per_run)
    assert bulk.attrs == per_run.attrs


def test_the_store_holds_the_cases(uri: str) -> None:
    frame = results.load("scale", uri)
    assert len(frame) == 500 - 5  # trials 50, 147, 244, 341, 438 were deleted
    assert set(frame["status"]) == {"FINISHED", "RUNNING", "FAILED"}
    history = results.load_history("scale", uri, bulk=False)
    assert history["value"].isna().any()
    assert set(history["step"]) == {0, 1, 2}  # the summary step (3) is left out


@pytest.mark.parametrize("page", [bulk_reads.SQL_PAGE, 64], ids=["one-page", "pages"])
def test_histories_match_get_metric_history_point_by_point(
    uri: str, page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk_reads, "SQL_PAGE", page)
    launch = read_launch("scale", uri)
    wanted = {run.info.run_id: sorted(run.data.metrics) for run in launch.trials[::3]}
    found = bulk_reads.histories(launch.client, wanted)
    assert sum(len(points) for points in found.values()) > 1000
    for (run_id, key), points in found.items():
        expected = [(m.step, m.value, m.timestamp) for m in launch.client.get_metric_history(run_id, key)]
        # NaN != NaN: compare NaN as a marker
        assert [(s, "nan" if math.isnan(v) else v, t) for s, v, t in points] == [
            (s, "nan" if math.isnan(v) else v, t) for s, v, t in expected
        ], (run_id, key)


def test_load_with_best_is_the_per_run_frame(uri: str) -> None:
    bulk = results.load("scale", uri, best=True)
    assert {"best/val/acc", "best/id/acc", "best/ood/avg_acc"} <= set(bulk.columns)
    same_frames(bulk, results.load("scale", uri, best=True, bulk=False))


@pytest.mark.parametrize("metrics", [None, ["id/acc", "ood/avg_acc"]], ids=["every-metric", "two"])
def test_load_history_is_the_per_run_frame(
    uri: str, metrics: list[str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk_reads, "SQL_PAGE", 64)  # several pages, the last one short
    bulk = results.load_history("scale", uri, metrics=metrics)
    per_run = results.load_history("scale", uri, metrics=metrics, bulk=False)
    same_frames(bulk, per_run)
    assert len(bulk) > 2000


def test_epochs_run_is_the_per_run_count(uri: str) -> None:
    frame = results.load("scale", uri)
    bulk = add_epochs_run(frame.copy(), uri, read_launch("scale", uri))
    same_frames(bulk, add_epochs_run(frame.copy(), uri, read_launch("scale", uri, bulk=False)))
    same_frames(bulk, add_epochs_run(frame.copy(), uri))  # no launch: each run read on its own
    assert set(bulk["epochs_run"]) == {1.0, 3.0}  # running, failed and reference trials logged one epoch


def test_status_reads_what_it_prints_and_says_what_the_table_leaves_out(
    uri: str, capsys: pytest.CaptureFixture
) -> None:
    store, parent = sweep_runs.resolve_parent("scale", uri)
    light = sweep_runs.trial_runs(store, parent, status.printed(parent))
    full = sweep_runs.trial_runs(store, parent)
    assert [run.info for run in light] == [run.info for run in full]
    assert all(not run.data.params and set(run.data.metrics) <= {"val/acc"} for run in light)
    assert status.summarise(parent, light, 10**13) == status.summarise(parent, full, 10**13)
    assert main(["status", "scale", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert f"the {status.TABLE_ROWS} most recently started of 495 trials" in out
    assert sum(line.startswith("│") and "seed=" in line for line in out.splitlines()) == status.TABLE_ROWS
    assert "zeroshot reference seed=0" not in out  # the first trial started, left out


@pytest.mark.slow
def test_a_tracking_server_reads_the_same_in_bulk(uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a real ``mlflow server`` on the same store: its get-history-bulk pages (100 runs)
    and the fallback for a page the server may have cut short give get_metric_history's points."""
    with mlflow_server(tmp_path, backend_store_uri=uri) as server:
        same_frames(results.load("scale", server), results.load("scale", uri))
        launch = read_launch("scale", server)
        wanted = {run.info.run_id: sorted(run.data.metrics) for run in launch.trials[:130]}
        found = bulk_reads.histories(launch.client, wanted)
        assert _same_with_nan(found, bulk_reads.histories(launch.client, wanted, bulk=False))
        monkeypatch.setattr(bulk_reads, "REST_MAX_RESULTS", 50)  # every page counts as cut short
        assert _same_with_nan(bulk_reads.histories(launch.client, wanted), found)
        history = results.history_of(launch, ["id/acc"])
        assert_frame_equal(history, results.load_history("scale", uri, metrics=["id/acc"]))


def _same_with_nan(a: bulk_reads.Histories, b: bulk_reads.Histories) -> bool:
    def plain(found: bulk_reads.Histories) -> dict:
        return {pair: [(s, "nan" if math.isnan(v) else v, t) for s, v, t in points] for pair, points in found.items()}

    return plain(a) == plain(b)
