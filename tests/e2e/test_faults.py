"""Faults during a sweep on the local Ray instance: what each one leaves behind in MLflow.

The retry-from-checkpoint faults live in test_sweeps.py; RELIABILITY.md lists every fault tried.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeper.cli import main

pytestmark = pytest.mark.slow

TINY_DATA = {
    "source": {"shapes": {"per_class": {"train": 16, "val": 10, "test": 10}}},
    "id": "photo",
    "ood": ["sketch"],
}


def sweep_runs(workdir: Path, sweep: str) -> tuple[list, list]:
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = [
        r
        for e in client.search_experiments()
        for r in client.search_runs([e.experiment_id])
        if r.data.tags.get("sweeper.sweep") == sweep
    ]
    return (
        [r for r in runs if r.data.tags["sweeper.kind"] == "sweep"],
        [r for r in runs if r.data.tags["sweeper.kind"] == "trial"],
    )


def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(local_ray, workdir: Path) -> None:
    sweep = {
        "name": "nan-e2e",
        "method": "ft",
        "data": TINY_DATA,
        "train": {"epochs": 2, "batch_size": 40},
        "search": {"lr": {"grid": [1e-4, 1e30]}},
        "seeds": [0],
        "max_retries": 2,
    }
    path = workdir / "nan-e2e.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert main(["launch", str(path)]) == 1  # some trial failed

    parents, children = sweep_runs(workdir, "nan-e2e")
    assert [p.info.status for p in parents] == ["FAILED"]
    assert len(children) == 2  # the retries reattached; no duplicate run
    by_lr = {float(c.data.params["lr"]): c for c in children}
    healthy, diverged = by_lr[1e-4], by_lr[1e30]
    assert healthy.info.status == "FINISHED" and "sweeper.failure" not in healthy.data.tags
    assert diverged.info.status == "FAILED"
    reason = diverged.data.tags["sweeper.failure"]
    assert reason.startswith("NonFiniteLoss: non-finite loss in epoch 0: ") and "train/loss=nan" in reason
    # max_retries: 2 gave it three attempts; the two before the last are its history, with the same reason
    earlier = diverged.data.tags["sweeper.failure_history"].splitlines()
    assert earlier == [f"attempt {n}: {' '.join(reason.split())}"[:1000] for n in (1, 2)]
    assert not diverged.data.metrics  # the diverged epoch was never reported
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    history = client.get_metric_history(healthy.info.run_id, "train/loss")
    # two epochs, then the summary step (the epoch selected on validation)
    assert [m.step for m in history] == [0, 1, 2] and all(math.isfinite(m.value) for m in history)


def test_an_mlflow_server_outage_mid_sweep_loses_no_metric(local_ray, workdir: Path) -> None:
    """The tracking server goes down once the first epoch is logged and comes back 15 s later on
    the same port: MLflow's client retries, and every epoch of every trial arrives."""
    import sqlite3
    import threading
    import time

    from servers import free_port, start_mlflow_server, stop_process_group

    port = free_port()
    server = [start_mlflow_server(workdir, port)]
    outage: dict[str, float] = {}

    def take_the_server_down_and_back() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.Error), sqlite3.connect(workdir / "server.db") as db:
                if db.execute("SELECT count(*) FROM metrics WHERE key = 'id/acc'").fetchone()[0]:
                    break
            time.sleep(0.2)
        outage["down"] = time.monotonic()
        stop_process_group(server[0])
        time.sleep(15)
        server[0] = start_mlflow_server(workdir, port)
        outage["up"] = time.monotonic()

    sweep = {
        "name": "outage-e2e",
        "method": "ft",
        "data": TINY_DATA,
        "train": {"epochs": 3, "batch_size": 40},
        "search": {"lr": {"grid": [1e-4, 3e-4]}},
        "seeds": [0],
        "max_concurrent": 1,
        "tracking": {"uri": f"http://127.0.0.1:{port}"},
    }
    path = workdir / "outage-e2e.yaml"
    path.write_text(yaml.safe_dump(sweep))
    chaos = threading.Thread(target=take_the_server_down_and_back, daemon=True)
    chaos.start()
    try:
        status = main(["launch", str(path)])
        finished_at = time.monotonic()
        chaos.join(timeout=120)
        assert outage.get("up"), "the outage never happened or the server did not come back"
        assert finished_at > outage["up"], "the sweep ended before the server came back: no outage was tested"
        client = MlflowClient(f"http://127.0.0.1:{port}")
        runs = [
            r
            for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id])
            if r.data.tags.get("sweeper.sweep") == "outage-e2e"
        ]
        children = [r for r in runs if r.data.tags["sweeper.kind"] == "trial"]
        assert len(children) == 2 and "RUNNING" not in {r.info.status for r in runs}
        for child in children:  # finished with every epoch, or failed saying why: never lost silently
            steps = sorted({m.step for m in client.get_metric_history(child.info.run_id, "id/acc")})
            assert (child.info.status == "FINISHED" and steps == [0, 1, 2, 3]) or (
                child.info.status == "FAILED" and child.data.tags.get("sweeper.failure")
            ), (child.info.status, steps)
        assert status == 0 and {c.info.status for c in children} == {"FINISHED"}
    finally:
        stop_process_group(server[0])
