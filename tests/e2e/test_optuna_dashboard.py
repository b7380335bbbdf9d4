"""The search, live, in optuna-dashboard: a real Ray Tune run whose OptunaSearch keeps its study
where ``study_kwargs`` says, read through the dashboard's HTTP API while trials are added; Tune
restores that searcher from its pickles; ``sweeper ui --optuna`` serves both UIs and stops both.

Every server is started and stopped here, on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import free_port, stop_process_group

from sweeper.run.optuna_storage import study_kwargs
from sweeper.run.space import define_by_run
from sweeper.spec.loading import from_mapping

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = Path(sys.executable).parent / "optuna-dashboard"
SEARCH = {"lr": {"float": [1e-4, 1e-2], "log": True}}
SWEEP = {
    "name": "live",
    "method": "ft",
    "data": {"source": "shapes", "id": "photo", "ood": ["sketch"]},
    "search": SEARCH,
    "searcher": "tpe",
    "num_samples": 3,
}


def get_json(address: str) -> Any:
    with urllib.request.urlopen(address, timeout=5) as response:  # noqa: S310 - a server this test started
        return json.loads(response.read())


def wait_for(address: str, process: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:] if log.exists() else ''}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(address, timeout=2).close()  # noqa: S310 - a server this test started
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{address} not up in {timeout_s}s: {log.read_text()[-2000:]}")
        time.sleep(0.3)


@contextlib.contextmanager
def dashboard(storage: str, folder: Path) -> Iterator[str]:
    """optuna-dashboard on 127.0.0.1 (a free port) on ``storage``; yields its address."""
    port, log = free_port(), folder / "dashboard.log"
    command = [str(DASHBOARD), "--host", "127.0.0.1", "--port", str(port), storage]
    with log.open("a") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        address = f"http://127.0.0.1:{port}"
        wait_for(f"{address}/api/studies", server, log)
        yield address
    finally:
        stop_process_group(server)


def trainable(config: dict[str, Any]) -> None:
    from ray import tune

    for step in range(3):
        time.sleep(0.4)  # long enough for the dashboard to be read between reports
        tune.report({"ood/avg_acc": config["lr"] * 10 + step / 100})


@pytest.fixture()
def trainable_by_value() -> Iterator[None]:
    """Ray's workers cannot import a test module: send this module's trainable by value."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def interrupt_after_each_trial() -> Any:
    """A Tune callback that stops the run when a trial completes, as Ctrl-C would (Tune saves the
    experiment, searcher included, and returns). Built here: Ray is imported only when it runs."""
    from ray import tune

    class Interrupt(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            os.kill(os.getpid(), signal.SIGUSR1)  # Tune's own interrupt signal, besides SIGINT

    return Interrupt()


def test_dashboard_shows_the_study_while_tune_adds_trials(local_ray, trainable_by_value, tmp_path: Path) -> None:
    """Launch, interrupted after one trial, then resumed: the dashboard follows the study all along,
    and the resumed searcher (unpickled by Tune, RDBStorage included) goes on in the same study."""
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    spec = from_mapping(SWEEP)
    kwargs = study_kwargs(spec, f"sqlite:///{tmp_path / 'mlflow.db'}")
    storage = kwargs["storage"].url
    seen: list[list[str]] = []  # the trial states of each reading of the study
    stop = threading.Event()
    experiment = tmp_path / "sweeps" / "live"
    resources = tune.with_resources(trainable, {"cpu": 1})

    with dashboard(storage, tmp_path) as address:

        def watch() -> None:
            while not stop.is_set():
                studies = get_json(f"{address}/api/studies")["study_summaries"]
                for study in studies:
                    if study["study_name"] == "live":
                        detail = get_json(f"{address}/api/studies/{study['study_id']}")
                        seen.append([t["state"] for t in detail["trials"]])
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        space = functools.partial(define_by_run, search=SEARCH, fixed={})
        searcher = OptunaSearch(
            space=space, metric="ood/avg_acc", mode="max", sampler=optuna.samplers.RandomSampler(seed=0), **kwargs
        )
        first = tune.Tuner(
            resources,
            tune_config=tune.TuneConfig(
                metric="ood/avg_acc", mode="max", search_alg=searcher, num_samples=3, max_concurrent_trials=1
            ),
            run_config=tune.RunConfig(
                name="live", storage_path=str(experiment.parent), verbose=0, callbacks=[interrupt_after_each_trial()]
            ),
        ).fit()
        assert sum(r.error is None and r.metrics.get("done", False) for r in first) < 3  # interrupted

        # `sweeper resume`: Tune unpickles the tuner and the searcher with its RDBStorage.
        restored = tune.Tuner.restore(str(experiment), trainable=resources, resume_unfinished=True)
        restored._local_tuner._run_config.callbacks = []  # as sweeper.run.resume replaces them
        results = restored.fit()
        deadline = time.monotonic() + 20  # the dashboard caches a study's trials for 2 s
        while (not seen or seen[-1] != ["Complete"] * 3) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        watcher.join(timeout=30)
        assert results.num_errors == 0 and len(results) == 3

        assert seen[-1] == ["Complete"] * 3, seen[-1]
        # Read while the search ran: a trial running, and fewer than three trials finished.
        assert any("Running" in states for states in seen), seen
        assert any(states.count("Complete") < 3 for states in seen), seen
        study = get_json(f"{address}/api/studies")["study_summaries"]
        assert [s["user_attrs"] for s in study if s["study_name"] == "live"]

    summaries = optuna.get_all_study_summaries(storage)
    assert [(s.study_name, s.n_trials) for s in summaries] == [("live", 3)]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_ui_optuna_serves_both_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    from mlflow.tracking import MlflowClient

    MlflowClient(uri).create_experiment("live")
    study = study_kwargs(from_mapping(SWEEP), uri)["study_name"]
    port, optuna_port, log = free_port(), free_port(), tmp_path / "ui.log"
    command = [
        sys.executable,
        "-m",
        "sweeper.cli",
        "ui",
        "--tracking-uri",
        uri,
        "--port",
        str(port),
        "--optuna",
        "--optuna-port",
        str(optuna_port),
    ]
    with log.open("a") as out:
        ui = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{optuna_port}/api/studies", ui, log)
        wait_for(f"http://127.0.0.1:{port}/health", ui, log, timeout_s=240)  # 70 s seen on 2 busy cores
        names = [s["study_name"] for s in get_json(f"http://127.0.0.1:{optuna_port}/api/studies")["study_summaries"]]
        assert names == [study]
        experiments = get_json(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=10")
        assert "live" in [e["name"] for e in experiments["experiments"]]
        text = log.read_text()
        assert f"http://127.0.0.1:{port}" in text and f"http://127.0.0.1:{optuna_port}" in text

        os.kill(ui.pid, signal.SIGINT)  # to sweeper only, as `kill -INT`: it must stop the servers itself
        assert ui.wait(timeout=60) == 0
        deadline = time.monotonic() + 20
        while (port_open(port) or port_open(optuna_port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not port_open(port) and not port_open(optuna_port)
    finally:
        stop_process_group(ui)
