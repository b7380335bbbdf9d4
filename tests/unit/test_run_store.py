"""`sweeper status` reads MLflow without MLflow: ``sweeper.tracking.run_store`` (SQL tables, REST API) and
``sweeper.tracking.sweep_runs`` must find exactly the runs that ``sweeper.tracking.results`` finds with MlflowClient.

The store is written by MLflow's own client, with the tags ``sweeper launch`` sets (``start_sweep``,
``TrialRun``): two launches of one sweep, trials finished, retried, failed, still running, deleted and NaN,
a reference trial, a nested confirm sweep, a sweep in a second experiment, a deleted experiment,
and two launches with the same start time. The REST path is checked against a real ``mlflow
server`` on that store, PostgreSQL against a real PostgreSQL; the start-up cost in a fresh interpreter.
"""

from __future__ import annotations

import base64
import http.server
import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import free_port, mlflow_server, postgres_server

from sweeper.cli import main
from sweeper.commands.status import printed as printed_keys
from sweeper.commands.status import summarise
from sweeper.tracking import results, sweep_runs
from sweeper.tracking.rest_store import RestStore, authorization_header
from sweeper.tracking.run_store import open_store
from trainables.errors import InputError

HEAVY = ("torch", "ray", "mlflow", "pandas", "open_clip")
NOW_MS = 10**13  # summarise's "now", fixed so that both readers' summaries can be compared
OBJECTIVE = json.dumps({"metric": "ood/avg_acc", "mode": "max"})


def build_store(uri: str) -> None:
    """Sweeps written the way `sweeper launch` writes them, plus the cases a reader can get wrong."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from sweeper.tracking.runs import TrialRun, start_sweep

    client = MlflowClient(uri)
    tags = {"sweeper.objective": OBJECTIVE, "sweeper.total_trials": "6"}
    old = start_sweep("demo", "demo-exp", uri, tags, sweep_file="name: demo\n")
    with TrialRun(old, "t0", "ft lr=0.1 seed=0", {"lr": 0.1, "method": "ft", "seed": 0}, {}) as trial:
        trial.log({"ood/avg_acc": 0.9}, step=0)
    client.set_terminated(old.parent_run_id, "FINISHED")

    sweep = start_sweep("demo", "demo-exp", uri, tags, sweep_file="name: demo\n")
    for n, history in enumerate([[0.5, 0.7, 0.6], [0.8, 0.75]]):  # the latest step counts, not the best
        name, params, method = f"ft lr={n} seed=0", {"lr": n, "method": "ft", "seed": 0}, {"sweeper.method": "ft"}
        if n == 1:  # fails once, then Tune's retry reattaches and finishes: a retried trial, not a failed one
            with pytest.raises(RuntimeError), TrialRun(sweep, "t1", name, params, method):
                raise RuntimeError("worker lost")
        with TrialRun(sweep, f"t{n}", name, params, method) as trial:
            for step, value in enumerate(history):
                trial.log({"ood/avg_acc": value, "id/acc": value / 2}, step=step)
    with pytest.raises(RuntimeError), TrialRun(sweep, "t2", "ft lr=2 seed=0", {"lr": 2}, {}) as trial:
        trial.log({"ood/avg_acc": 0.1}, step=0)
        raise RuntimeError("diverged")  # FAILED, with the sweeper.failure tag
    running = TrialRun(sweep, "t3", "ft lr=3 seed=0", {"lr": 3, "note": "x" * 300}, {}).__enter__()
    running.log({"ood/avg_acc": 0.99, "id/ece": math.nan}, step=0)  # still RUNNING; NaN kept as NaN
    with TrialRun(sweep, "t4", "zeroshot seed=0", {"method": "zeroshot"}, {"sweeper.reference": "zeroshot"}) as trial:
        trial.log({"ood/avg_acc": 0.95}, step=0)  # a reference trial: never the best
    deleted = TrialRun(sweep, "t5", "ft lr=5 seed=0", {"lr": 5}, {}).__enter__()
    deleted.log({"ood/avg_acc": 1.0}, step=0)
    client.delete_run(deleted.run_id)
    # A trial run without sweeper's tags (a missing kind counts as a trial; named by its run name).
    bare = client.create_run(
        sweep.experiment_id, run_name="hand-made", tags={"mlflow.parentRunId": sweep.parent_run_id}
    )
    client.log_batch(
        bare.info.run_id,
        metrics=[Metric("ood/avg_acc", 0.2, 5, 3), Metric("ood/avg_acc", 0.3, 9, 1)],
        params=[Param("lr", "9")],
    )
    client.set_terminated(bare.info.run_id, "KILLED")
    # MLflow before 1.29 kept a run's name only in its mlflow.runName tag.
    from sqlalchemy import create_engine, text

    with create_engine(uri).begin() as sql:
        sql.execute(text("UPDATE runs SET name = NULL WHERE run_uuid = :id"), {"id": bare.info.run_id})
    # A confirm sweep nests its parent under the sweep's: a child, but not a trial.
    confirm = start_sweep(
        "demo-confirm", "demo-exp", uri, {"mlflow.parentRunId": sweep.parent_run_id, "sweeper.objective": OBJECTIVE}
    )
    with TrialRun(confirm, "c0", "ft lr=1 seed=1", {"lr": 1, "seed": 1}, {}) as trial:
        trial.log({"ood/avg_acc": 0.77}, step=0)

    other = start_sweep("other", None, uri, {"sweeper.total_trials": "x"})  # experiment "other"
    with TrialRun(other, "o0", "o0", {}, {}) as trial:
        trial.tag("free", "text with 'quotes'")
    newer = start_sweep("demo", "gone", uri, tags)  # the newest launch of demo, but deleted with its experiment
    client.delete_experiment(newer.experiment_id)
    for _ in range(2):  # two launches in the same millisecond: the run id decides
        client.create_run(
            other.experiment_id, start_time=5000, run_name="tie", tags={"sweeper.kind": "sweep", "sweeper.sweep": "tie"}
        )
    late = client.create_run(
        sweep.experiment_id, start_time=None, tags={"sweeper.kind": "sweep", "sweeper.sweep": "demo"}
    )
    client.delete_run(late.info.run_id)  # a deleted launch is not the latest one
    client.log_batch(sweep.parent_run_id, tags=[RunTag("sweeper.extra", "")])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("run-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    build_store(uri)
    return uri


def view(run: Any) -> tuple:
    """What sweeper reads of a run, NaN made comparable."""
    metrics = {k: "nan" if math.isnan(v) else v for k, v in run.data.metrics.items()}
    info = run.info
    return (
        info.run_id,
        info.run_name,
        info.experiment_id,
        info.status,
        info.start_time,
        info.end_time,
        dict(run.data.tags),
        metrics,
        dict(run.data.params),
    )


def finds_the_same(uri: str, mlflow_uri: str | None = None) -> None:
    """The light store at ``uri`` finds what MlflowClient finds at ``mlflow_uri`` (default: the same)."""
    mlflow_uri = mlflow_uri or uri
    client = results.open_store(mlflow_uri)
    store = open_store(uri)
    expected_parents = results.sweep_parents(client)
    assert [view(r) for r in sweep_runs.sweep_parents(store)] == [view(r) for r in expected_parents]
    assert len(expected_parents) >= 6
    for parent, light in zip(expected_parents, sweep_runs.sweep_parents(store), strict=True):
        expected = results.trial_runs(client, parent)
        found = sweep_runs.trial_runs(store, light)
        assert [view(r) for r in found] == [view(r) for r in expected]
        assert summarise(light, found, NOW_MS) == summarise(parent, expected, NOW_MS)
        # `sweeper status` reads only what it prints, and prints the same
        printed = sweep_runs.trial_runs(store, light, printed_keys(light))
        assert [r.info for r in printed] == [r.info for r in found]
        assert summarise(light, printed, NOW_MS) == summarise(parent, expected, NOW_MS)
    for sweep, experiment in [
        ("demo", None),
        ("demo", "demo-exp"),
        ("tie", None),
        ("demo-confirm", None),
        ("other", "other"),
    ]:
        _, expected_parent = results.resolve_parent(sweep, mlflow_uri, experiment)
        _, parent = sweep_runs.resolve_parent(sweep, uri, experiment)
        assert view(parent) == view(expected_parent)


def test_sql_reader_finds_what_mlflow_finds(store: str) -> None:
    finds_the_same(store)


def test_the_store_holds_the_cases_the_reader_must_get_right(store: str) -> None:
    """Guards the fixture: the comparison above means little if these cases went missing."""
    store_ = open_store(store)
    _, parent = sweep_runs.resolve_parent("demo", store)
    trials = sweep_runs.trial_runs(store_, parent)
    by_id = {trial.data.tags.get("sweeper.trial_id", trial.info.run_name): trial for trial in trials}
    assert sorted(by_id) == ["hand-made", "t0", "t1", "t2", "t3", "t4"]  # not t5 (deleted), not the confirm sweep
    assert [by_id[t].info.status for t in ("t0", "t2", "t3", "hand-made")] == [
        "FINISHED",
        "FAILED",
        "RUNNING",
        "KILLED",
    ]
    assert by_id["t0"].data.metrics == {"ood/avg_acc": 0.6, "id/acc": 0.3}  # the last step's values
    assert by_id["hand-made"].data.metrics == {"ood/avg_acc": 0.2}  # step 3 beats the later timestamp
    assert math.isnan(by_id["t3"].data.metrics["id/ece"]) and by_id["t3"].info.end_time is None
    assert by_id["t2"].data.tags["sweeper.failure"] == "RuntimeError: diverged"
    assert "sweeper.failure_history" not in by_id["t2"].data.tags  # failed on its only attempt
    assert "sweeper.failure" not in by_id["t1"].data.tags and by_id["t1"].info.status == "FINISHED"
    assert by_id["t1"].data.tags["sweeper.failure_history"] == "attempt 1: RuntimeError: worker lost"
    assert by_id["t3"].data.params == {"lr": "3", "note": "x" * 300}
    summary = summarise(parent, trials, NOW_MS)
    assert summary["best"]["value"] == pytest.approx(0.99)  # the running trial's, not the reference's 0.95
    assert summary["trials"] == {"RUNNING": 1, "FINISHED": 3, "FAILED": 1, "KILLED": 1}
    assert summary["retried_trials"] == 1  # t1, among the FINISHED
    ties = [p for p in sweep_runs.sweep_parents(store_) if p.data.tags["sweeper.sweep"] == "tie"]
    assert len(ties) == 2 and ties[0].info.start_time == ties[1].info.start_time


def test_status_prints_the_same_as_before(store: str, capsys: pytest.CaptureFixture) -> None:
    """The command's JSON is summarise() of the runs MlflowClient finds (but for the clock)."""
    client, parent = results.resolve_parent("demo", store)
    expected = summarise(parent, results.trial_runs(client, parent), NOW_MS)
    assert main(["status", "demo", "--tracking-uri", store, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed.pop("elapsed_s") > 0 and expected.pop("elapsed_s") > 0
    # The driver's lease is read from the storage folder, not from the runs: no folder here, so unknown.
    assert printed.pop("driver")["alive"] is None
    assert printed == expected
    assert main(["status", "--tracking-uri", store, "--json"]) == 0
    listed = {s["sweep"]: s for s in json.loads(capsys.readouterr().out)}
    assert (
        sorted(listed) == ["demo", "demo-confirm", "other", "tie"]
        and listed["demo"]["parent_run_id"] == parent.info.run_id
    )
    assert main(["status", "demo", "--tracking-uri", store]) == 0
    assert "[ft lr=3 seed=0]" in capsys.readouterr().out  # the best trial's name, not eaten as markup


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


@pytest.mark.parametrize("args", [["demo"], [], ["demo", "--json"]], ids=["one", "all", "json"])
def test_status_imports_no_heavy_module(store: str, args: list[str]) -> None:
    loaded = _modules_after(
        f"from sweeper.cli import main\nassert main(['status', *{args!r}, '--tracking-uri', {store!r}]) == 0"
    )
    assert "sqlalchemy" in loaded  # it did read the store
    assert not [name for name in HEAVY if name in loaded]


def _fails(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("sweeper: error: "), err
    return err[0]


def test_unknown_names_exit_2_naming_what_is_known(store: str, capsys: pytest.CaptureFixture) -> None:
    line = _fails(["status", "nope", "--tracking-uri", store], capsys)
    assert "sweep: no sweep named 'nope'" in line and "known sweeps: demo, demo-confirm, other, tie" in line
    line = _fails(["status", "demo", "--experiment", "nope", "--tracking-uri", store], capsys)
    assert "--experiment: no experiment named 'nope'" in line and "demo-exp, other" in line
    line = _fails(["status", "other", "--experiment", "demo-exp", "--tracking-uri", store], capsys)
    assert "no sweep named 'other' in experiment 'demo-exp'" in line


def test_a_missing_or_foreign_store_is_reported_and_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "none" / "mlflow.db"
    assert "no MLflow store at" in _fails(["status", "--tracking-uri", f"sqlite:///{missing}"], capsys)
    assert not missing.parent.exists()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")  # MlflowClient would have created its tables in it
    line = _fails(["status", "demo", "--tracking-uri", f"sqlite:///{empty}"], capsys)
    assert "cannot read MLflow store" in line and "no such table" in line
    assert empty.read_bytes() == b""


def test_default_store_is_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert f"no MLflow store at {tmp_path.resolve() / 'mlflow.db'}" in _fails(["status"], capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "uri, words",
    [
        ("http://127.0.0.1:{port}", "unreachable"),
        ("postgresql://u:s3cret@127.0.0.1:{port}/mlflow", "psycopg"),  # SQLAlchemy 2.1 wants psycopg 3 for this
        ("postgresql+psycopg2://u:s3cret@127.0.0.1:{port}/mlflow", "Connection refused"),
        ("databricks://profile", "unsupported scheme 'databricks'"),
    ],
)
def test_unreadable_stores_exit_2_with_one_line(uri: str, words: str, capsys: pytest.CaptureFixture) -> None:
    line = _fails(["status", "demo", "--tracking-uri", uri.format(port=free_port())], capsys)
    assert "--tracking-uri" in line and words in line and "s3cret" not in line


@pytest.fixture
def fake_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server that refuses every call as MLflow's auth does; yields its URI and the
    Authorization headers it received."""
    seen: list[str] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            body = json.dumps({"error_code": "UNAUTHENTICATED", "message": "You are not authenticated."}).encode()
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_rest_calls_carry_mlflows_credentials_and_never_print_them(
    fake_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri, seen = fake_server
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert authorization_header() is None
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0ken")
    assert authorization_header() == "Bearer t0ken"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    assert authorization_header() == "Bearer t0ken"  # a user without a password is not basic auth
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text("[mlflow]\nmlflow_tracking_password = pw-from-file\n")
    assert authorization_header() == "Basic " + base64.b64encode(b"ann:pw-from-file").decode()
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")  # the environment wins, as in MLflow
    with pytest.raises(InputError) as error:
        RestStore(uri).experiments()
    assert seen == ["Basic " + base64.b64encode(b"ann:s3cret").decode()]
    assert str(error.value) == f"--tracking-uri: cannot read MLflow store {uri}: HTTP 401: You are not authenticated."


@pytest.mark.slow
def test_rest_reader_finds_what_the_sql_reader_finds(store: str, tmp_path: Path) -> None:
    """A real `mlflow server` on the same sqlite store: its REST API gives the same runs."""
    with mlflow_server(tmp_path, backend_store_uri=store) as server:
        finds_the_same(server, mlflow_uri=store)
        assert open_store(server).experiment_named("gone") is not None  # deleted, but found by name
        assert open_store(server).experiment_named("never") is None


@pytest.mark.slow
def test_postgresql_store_reads_like_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow puts a database store's artifacts in ./mlruns
    with postgres_server() as database:
        build_store(database)
        finds_the_same(database)
