"""What a multi-objective sweep shows while it runs (``SweepProgress``) and in ``sweeper status``:
the size of the Pareto front of the finished trials, the best value of each objective, and the
trials that finished unscored. A single-objective sweep shows its best, as before."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from sweeper.commands.status import front_line, summarise
from sweeper.run.live import SweepProgress
from sweeper.run.scoring import UNSCORED_TAG

TWO = [("val/acc", "max"), ("val/nll", "min")]
# (val/acc, val/nll): a and c are on the front, b is dominated by a; d has no val/nll; e is NaN.
TRIALS = {"a": (0.8, 0.3), "b": (0.7, 0.4), "c": (0.9, 0.6), "d": (0.95, None), "e": (0.5, math.nan)}


def result(acc: float, nll: float | None) -> dict[str, float]:
    return {"val/acc": acc} if nll is None else {"val/acc": acc, "val/nll": nll}


def test_the_live_view_keeps_the_front_and_each_objectives_best() -> None:
    progress = SweepProgress(total=6, objectives=TWO)
    for trial, (acc, nll) in TRIALS.items():
        progress.finish(trial, result(acc, nll))
    assert progress.front_size == 2 and progress.unscored == {"d", "e"}
    assert progress.best_of_each() == [0.9, 0.3]
    frame = progress.render()
    text = " ".join(str(line) for line in frame.renderables[1:])
    assert "front: 2 of 3 scored trials" in text and "val/acc (max) 0.9000" in text and "val/nll (min) 0.3000" in text
    assert "2 unscored" in text


def test_a_single_objective_view_shows_its_best_as_before() -> None:
    progress = SweepProgress(total=2, objectives=TWO[:1])
    progress.best_value, progress.best_config = 0.8, {"L": 2}
    progress.finish("a", {"val/acc": 0.8})
    assert progress.metric == "val/acc" and progress.best_line() == "best val/acc = 0.8000 at {'L': 2}"
    assert str(progress.render().renderables[1]) == progress.best_line()


def run(name: str, status: str, metrics: dict[str, float], tags: dict[str, str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        info=SimpleNamespace(run_id=name, run_name=name, status=status, start_time=0, end_time=1000),
        data=SimpleNamespace(metrics=metrics, tags=tags or {}),
    )


def parent(objectives: list[tuple[str, str]], **tags: str) -> SimpleNamespace:
    listed = [{"metric": m, "mode": mode, "oracle": False} for m, mode in objectives]
    return SimpleNamespace(
        info=SimpleNamespace(run_id="p", status="FINISHED", start_time=0, end_time=5000),
        data=SimpleNamespace(
            tags={
                "sweeper.sweep": "mo",
                "sweeper.total_trials": "6",
                "sweeper.objective": json.dumps(listed[0]),
                "sweeper.objectives": json.dumps(listed),
                **tags,
            }
        ),
    )


def children() -> list[SimpleNamespace]:
    runs = [run(t, "FINISHED", result(acc, nll)) for t, (acc, nll) in TRIALS.items()]
    reference = run("ref", "FINISHED", {"val/acc": 0.99, "val/nll": 0.01}, {"sweeper.reference": "ft"})
    return [*runs, reference, run("f", "FAILED", {})]


def test_status_shows_the_front_from_mlflow_runs() -> None:
    summary = summarise(parent(TWO), children())
    assert summary["front"]["size"] == 2 and summary["front"]["scored"] == 3  # the reference is not a candidate
    assert summary["front"]["best"]["val/acc"]["run_name"] == "c"
    assert summary["front"]["best"]["val/nll"] == {"value": 0.3, "run_name": "a", "run_id": "a"}
    assert summary["unscored_trials"] == 2 and summary["objectives"][1] == {"metric": "val/nll", "mode": "min"}
    assert front_line(summary) == "front: 2 of 3 scored trials; best val/acc (max) 0.9000, val/nll (min) 0.3000"
    json.dumps(summary)  # --json prints it


def test_status_reads_the_unscored_count_the_driver_tagged() -> None:
    assert summarise(parent(TWO, **{UNSCORED_TAG: "7"}), children())["unscored_trials"] == 7


def test_a_single_objective_status_keeps_its_shape() -> None:
    summary = summarise(parent(TWO[:1]), children())
    assert "front" not in summary and "objectives" not in summary
    assert summary["best"]["value"] == pytest.approx(0.95) and summary["objective"]["metric"] == "val/acc"
    assert summary["unscored_trials"] == 0  # every finished trial has val/acc


def test_status_prints_the_front(capsys: pytest.CaptureFixture) -> None:
    from rich.console import Console

    from sweeper.commands.status import _one

    _one(Console(width=200), summarise(parent(TWO), children()), children())
    out = capsys.readouterr().out
    assert "front: 2 of 3 scored trials" in out and "best val/nll: 0.3000  [a]" in out and "2 unscored" in out
