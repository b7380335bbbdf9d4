"""`sweeper status`, readable run names, the parent's sweep-file description and trial artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweeper.cli import main
from sweeper.run.trial import run_name
from sweeper.tracking import results
from sweeper.tracking.runs import SweepRun, TrialRun, finish_sweep, start_sweep
from trainables.config import TrialConfig

SWEEP_FILE = "name: demo\nmethod: lipsum_ft\n"


def _store(tmp_path: Path) -> tuple[str, SweepRun]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = start_sweep(
        "demo",
        None,
        uri,
        tags={
            "sweeper.objective": json.dumps({"metric": "ood/avg_acc", "mode": "max"}),
            "sweeper.report": json.dumps({"rows": ["L"], "metrics": ["id/acc"]}),
            "sweeper.total_trials": "3",
        },
        sweep_file=SWEEP_FILE,
    )
    for trial, (value, history) in enumerate([(0.6, [0.5, 0.7]), (0.8, [0.8, 0.8])]):
        with TrialRun(
            sweep, f"t{trial}", f"lipsum_ft L={trial} seed=0", {"L": trial, "method": "lipsum_ft", "seed": 0}, {}
        ) as run:
            run.log_text_once("trial.yaml", "method: lipsum_ft\n")
            for step, acc in enumerate(history):
                run.log({"ood/avg_acc": value, "id/acc": acc}, step=step)
    return uri, sweep


def test_status_counts_trials_and_finds_the_best(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    uri, _ = _store(tmp_path)
    assert main(["status", "demo", "--tracking-uri", uri, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trials"]["FINISHED"] == 2 and summary["total_trials"] == 3
    assert summary["best"]["value"] == pytest.approx(0.8) and summary["best"]["run_name"] == "lipsum_ft L=1 seed=0"
    assert summary["status"] == "RUNNING" and summary["remaining_s"] is not None
    assert main(["status", "--tracking-uri", uri]) == 0
    assert "demo" in capsys.readouterr().out


def test_a_finished_sweep_has_no_time_left(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    uri, sweep = _store(tmp_path)
    finish_sweep(sweep, {"t0": "FINISHED", "t1": "FINISHED"})
    assert main(["status", "demo", "--tracking-uri", uri, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "FINISHED" and summary["remaining_s"] == 0.0


def test_unknown_sweep_in_status_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    uri, _ = _store(tmp_path)
    assert main(["status", "nope", "--tracking-uri", uri]) == 2
    assert "no sweep named 'nope'" in capsys.readouterr().err


def test_parent_holds_the_sweep_file_and_children_their_config(tmp_path: Path) -> None:
    uri, sweep = _store(tmp_path)
    client = MlflowClient(uri)
    parent = client.get_run(sweep.parent_run_id)
    assert SWEEP_FILE in parent.data.tags["mlflow.note.content"]
    assert [a.path for a in client.list_artifacts(sweep.parent_run_id)] == ["sweep.yaml"]
    frame = results.load("demo", tracking_uri=uri, best=True)
    assert list(frame["sweep"].unique()) == ["demo"] and (frame["duration_s"] >= 0).all()
    assert frame["best/id/acc"].tolist() == pytest.approx([0.7, 0.8])
    for run_id in frame["run_id"]:
        assert [a.path for a in client.list_artifacts(run_id)] == ["trial.yaml"]
    assert set(results.history("demo", tracking_uri=uri)["metric"]) == {"id/acc", "ood/avg_acc"}


def test_run_names_read_like_the_configuration() -> None:
    trial = TrialConfig.model_validate({"method": "lipsum_ft", "data": {"id": "photo"}, "seed": 1, "params": {"L": 8}})
    assert run_name(trial, {"L": 8, "lr": 0.000312345}) == "lipsum_ft L=8 lr=0.000312 seed=1"
    assert run_name(trial, {"method": "lipsum_ft"}) == "lipsum_ft seed=1"
