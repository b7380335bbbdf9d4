"""Faults during a sweep on the local Ray instance: what each one leaves behind in MLflow.

The retry-from-checkpoint faults live in test_sweeps.py; RELIABILITY.md lists every fault tried.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeper.cli import main

pytestmark = pytest.mark.slow

TINY_DATA = {"source": {"shapes": {"per_class": {"train": 16, "test": 10}}}, "id": "photo", "ood": ["sketch"]}


def sweep_runs(workdir: Path, sweep: str) -> tuple[list, list]:
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
            if r.data.tags.get("sweeper.sweep") == sweep]
    return ([r for r in runs if r.data.tags["sweeper.kind"] == "sweep"],
            [r for r in runs if r.data.tags["sweeper.kind"] == "trial"])


def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(local_ray, workdir: Path) -> None:
    sweep = {"name": "nan-e2e", "method": "ft", "data": TINY_DATA, "train": {"epochs": 2, "batch_size": 40},
             "search": {"lr": {"grid": [1e-4, 1e30]}}, "seeds": [0], "max_retries": 2}
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
    assert not diverged.data.metrics  # the diverged epoch was never reported
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    history = client.get_metric_history(healthy.info.run_id, "train/loss")
    assert [m.step for m in history] == [0, 1] and all(math.isfinite(m.value) for m in history)
