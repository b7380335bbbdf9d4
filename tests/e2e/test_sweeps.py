"""`sweeper launch` end to end on the local Ray instance: grid, TPE, retries, MLflow, report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeper.cli import main
from sweeper.tables.ablation import ablation_table
from sweeper.tracking import results

pytestmark = pytest.mark.slow
INJECTED = "injected failure (SWEEPER_FAIL_ONCE_DIR)"  # what a trial raises once under SWEEPER_FAIL_ONCE_DIR

TINY_DATA = {
    "source": {"shapes": {"per_class": {"train": 16, "val": 10, "test": 10}}},
    "id": "photo",
    "ood": ["clipart", "sketch"],
}


def write_sweep(folder: Path, name: str, **overrides) -> Path:
    sweep = {
        "name": name,
        "method": "lipsum_ft",
        "model": "zoo/tiny-clip-v1",
        "data": TINY_DATA,
        "train": {"epochs": 2, "batch_size": 40, "lr": 1e-4},
        "fixed": {"M": 8},
        "search": {"L": {"grid": [2, 4]}},
        "seeds": [0],
        "resources": {"cpu": 1},
        **overrides,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def runs_of(workdir: Path, sweep: str) -> tuple[list, list]:
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    everything = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    mine = [r for r in everything if r.data.tags.get("sweeper.sweep") == sweep]
    parents = [r for r in mine if r.data.tags.get("sweeper.kind") == "sweep"]
    children = [r for r in mine if r.data.tags.get("sweeper.kind") == "trial"]
    return parents, children


def test_grid_sweep_tracks_one_parent_and_a_finished_child_per_trial(local_ray, workdir, capsys) -> None:
    path = write_sweep(workdir, "grid-e2e", seeds=[0, 1])
    assert main(["launch", str(path)]) == 0
    parents, children = runs_of(workdir, "grid-e2e")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    assert sorted((c.data.params["L"], c.data.params["seed"]) for c in children) == [
        ("2", "0"),
        ("2", "1"),
        ("4", "0"),
        ("4", "1"),
    ]
    for child in children:
        assert {"id/acc", "id/ece", "id/nll", "ood/avg_acc", "ood/clipart/acc", "train/reg"} <= set(child.data.metrics)
        history = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}").get_metric_history(child.info.run_id, "id/acc")
        assert [m.step for m in history] == [0, 1, 2]  # two epochs, then the summary (the selected epoch)
        assert child.data.tags["sweeper.method"] == "lipsum_ft" and child.data.tags["sweeper.git_sha"]
    assert (workdir / "sweeps" / "grid-e2e").is_dir()

    # The table is built from MLflow and its numbers are MLflow's.
    capsys.readouterr()
    assert main(["report", "grid-e2e", "--format", "csv"]) == 0
    csv = capsys.readouterr().out
    frame = results.load("grid-e2e")
    table = ablation_table(frame, rows=["L"], metrics=["id/acc", "ood/avg_acc", "id/ece"])
    for _, row in table.iterrows():
        by_l = frame[frame["L"] == row["L"]]
        assert row["id/acc mean"] == pytest.approx(by_l["id/acc"].mean())
        assert row["n"] == 2
        assert f"{row['id/acc mean']}"[:6] in csv


def test_tpe_sweep_samples_conditional_parameters(local_ray, workdir) -> None:
    path = write_sweep(
        workdir,
        "tpe-e2e",
        searcher="tpe",
        num_samples=3,
        search_seed=3,
        search={
            "L": {"int": [1, 8]},
            "loss": {"choice": ["mse", "kld"]},
            "tau": {"float": [0.5, 4.0], "when": {"loss": "kld"}},
        },
        report={"rows": ["loss"], "metrics": ["id/acc"]},
    )
    assert main(["launch", str(path)]) == 0
    parents, children = runs_of(workdir, "tpe-e2e")
    assert len(parents) == 1 and len(children) == 3
    assert {c.info.status for c in children} == {"FINISHED"}
    for child in children:
        assert 1 <= int(child.data.params["L"]) <= 8
        assert ("tau" in child.data.params) == (child.data.params["loss"] == "kld")


def test_a_trial_that_fails_once_is_retried_without_a_duplicate_run(local_ray, workdir, monkeypatch) -> None:
    markers = workdir / "fail-once"
    markers.mkdir()
    monkeypatch.setenv("SWEEPER_FAIL_ONCE_DIR", str(markers))
    path = write_sweep(workdir, "retry-e2e", max_retries=1)
    assert main(["launch", str(path)]) == 0
    assert len(list(markers.iterdir())) == 2  # both trials did fail once
    parents, children = runs_of(workdir, "retry-e2e")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    for child in children:  # failed after epoch 0 was logged, resumed from its checkpoint: 0, 1, summary
        assert [m.step for m in client.get_metric_history(child.info.run_id, "id/acc")] == [0, 1, 2]
        # The run finished, so it is not tagged as failed; the injected error is kept as its history.
        assert "sweeper.failure" not in child.data.tags
        assert child.data.tags["sweeper.failure_history"] == f"attempt 1: RuntimeError: {INJECTED}"
    assert client.search_runs([parents[0].info.experiment_id], "tags.`sweeper.failure` != ''") == []


def test_a_trial_that_keeps_failing_is_closed_as_failed_not_left_running(
    local_ray, workdir, monkeypatch, capsys
) -> None:
    markers = workdir / "fail-once"
    markers.mkdir()
    monkeypatch.setenv("SWEEPER_FAIL_ONCE_DIR", str(markers))
    path = write_sweep(workdir, "fail-e2e", max_retries=0, search={"L": {"grid": [2]}})
    assert main(["launch", str(path)]) == 1
    parents, children = runs_of(workdir, "fail-e2e")
    assert parents[0].info.status == "FAILED"
    assert [c.info.status for c in children] == ["FAILED"]
    assert children[0].data.tags["sweeper.failure"] == f"RuntimeError: {INJECTED}"
    assert "sweeper.failure_history" not in children[0].data.tags  # its only attempt
    # The driver says why (the console wraps long lines, so whitespace is compared loosely).
    printed = " ".join(capsys.readouterr().out.split())
    assert re.search(rf"trial \S+ failed \{{[^}}]*\}}: RuntimeError: {re.escape(INJECTED)}", printed)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"search": {"L": {"grid": [0, 2]}}}, "search.L.grid[0]"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"method": "lipsum"}, "method"),
        ({"tracking": {"uri": "http://127.0.0.1:9"}}, "tracking.uri"),
    ],
)
def test_bad_input_stops_launch_before_anything_starts(workdir, capsys, change, field) -> None:
    path = write_sweep(workdir, "bad-e2e", **change)
    assert main(["launch", str(path)]) == 2
    assert field in capsys.readouterr().err
    assert not (workdir / "mlflow.db").exists() and not (workdir / "sweeps").exists()


def test_tpe_across_methods_gives_each_trial_only_its_method_parameters(local_ray, workdir) -> None:
    path = write_sweep(
        workdir,
        "methods-e2e",
        method={"choice": ["lipsum_ft", "lorsu"]},
        searcher="tpe",
        num_samples=4,
        search_seed=0,
        fixed={},
        search={
            "L": {"int": [1, 8], "when": {"method": "lipsum_ft"}},
            "rank": {"choice": [2, 4], "when": {"method": "lorsu"}},
        },
        train={"epochs": 1, "batch_size": 40, "lr": 1e-4},
        report={"rows": ["method"], "metrics": ["id/acc", "zs/colour/acc"]},
    )
    assert main(["launch", str(path)]) == 0
    _, children = runs_of(workdir, "methods-e2e")
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    for child in children:
        method, params = child.data.params["method"], child.data.params
        assert child.data.tags["sweeper.method"] == method
        assert ("L" in params) == (method == "lipsum_ft") and ("rank" in params) == (method == "lorsu")
        assert {"zs/colour/acc", "params/trainable"} <= set(child.data.metrics)


def test_an_objective_computed_after_the_last_epoch_drives_a_sweep(local_ray, workdir) -> None:
    # compat/hmean exists only once training ends; Tune still needs an objective at every epoch.
    path = write_sweep(
        workdir,
        "final-only-objective",
        method="contcoop",
        search={"lam": {"grid": [1.0, 8.0]}},
        fixed={"upgrade_model": "zoo/tiny-clip-v2"},
        objective={"metric": "compat/hmean", "oracle": True},
        train={"epochs": 2, "batch_size": 40, "lr": 2e-3},
    )
    assert main(["launch", str(path)]) == 0
    _, children = runs_of(workdir, "final-only-objective")
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    for child in children:  # the NaN padding went to Tune only: MLflow holds the one real value
        history = client.get_metric_history(child.info.run_id, "compat/hmean")
        # computed at the last epoch (step 1), repeated in the summary step (2); never NaN
        assert (
            [m.step for m in history] == [1, 2] and 0 < history[0].value <= 1 and history[1].value == history[0].value
        )


def test_the_benchmarks_sleeping_trial_body_runs_through_launch_and_is_retried(local_ray, workdir, monkeypatch) -> None:
    """bench/bench_driver.py's sweeps: the real launch path with ``SWEEPER_TRIAL_BODY`` in place of
    training; a trial failing after its first epoch is retried into the same run, one step per
    epoch (resume from its checkpoint: tests/unit/test_driver_scale.py)."""
    markers = workdir / "fail-once"
    markers.mkdir()
    monkeypatch.setenv("SWEEPER_FAIL_ONCE_DIR", str(markers))
    monkeypatch.setenv("SWEEPER_TRIAL_BODY", "trainables.sleep_trial:run")
    path = write_sweep(
        workdir, "sleep-e2e", method="ft", fixed={}, search={"lr": {"grid": [1e-4, 1e-3]}}, max_retries=1
    )
    assert main(["launch", str(path)]) == 0
    parents, children = runs_of(workdir, "sleep-e2e")
    assert parents[0].info.status == "FINISHED" and len(children) == 2
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["sweeper.failure_history"]
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val/acc")] == [0, 1, 2]
        assert "train/reg" not in child.data.metrics  # the sleeping body's metrics, not FT's training
    assert main(["report", "sleep-e2e", "--format", "csv"]) == 0
