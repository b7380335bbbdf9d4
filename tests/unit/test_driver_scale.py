"""What keeps the driver's cost per trial flat at thousands of trials (issue 22): the live view's
Pareto front taken in one trial at a time, and the sleeping trial body bench/bench_driver.py runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sweeper.run.live import SweepProgress
from sweeper.tables.pareto import RunningFront, front_indices
from trainables.config import TrialConfig
from trainables.sleep_trial import run


@pytest.mark.parametrize("modes", [["max", "min"], ["max", "max", "min"], ["min"]])
def test_the_running_front_is_the_front_of_every_point_so_far(modes: list[str]) -> None:
    rng = np.random.default_rng(len(modes))
    points = rng.integers(0, 6, size=(300, len(modes))).astype(float)  # coarse values: many ties
    points[rng.random(300) < 0.05, 0] = math.nan
    front = RunningFront(modes)
    for k, point in enumerate(points):
        front.add(point)
        expected = front_indices(points[: k + 1], modes)
        assert sorted(map(tuple, front.losses * front.signs)) == sorted(map(tuple, points[expected]))


def test_the_live_view_scores_trials_without_a_list_of_them() -> None:
    progress = SweepProgress(total=2_000, objectives=[("val/acc", "max"), ("val/nll", "min")])
    rng = np.random.default_rng(0)
    for k in range(2_000):
        progress.finish(str(k), {"val/acc": float(rng.random()), "val/nll": float(rng.random())})
    assert progress.scored == 2_000 and 0 < progress.front_size < 60
    assert "of 2000 scored trials" in progress.front_line()


def trial(**train) -> TrialConfig:
    return TrialConfig.model_validate(
        {
            "method": "ft",
            "model": "zoo/tiny-clip-v1",
            "seed": 1,
            "data": {"id": "photo"},
            "train": {"epochs": 3, **train},
        }
    )


def test_the_sleeping_body_reports_like_the_loop_and_resumes_to_the_same_summary(tmp_path: Path) -> None:
    reports: list[tuple[int, dict, dict | None]] = []

    def reporter(epoch, metrics, checkpoint, summary=None) -> None:
        reports.append((epoch, metrics, summary))
        if epoch == 1:
            checkpoint(tmp_path)

    whole = run(trial(), reporter)
    assert [epoch for epoch, _, _ in reports] == [0, 1, 2] and reports[-1][2] == whole
    assert {"id/acc", "val/acc", "ood/avg_acc", "ood/sketch/ece", "train/loss"} <= set(reports[0][1])
    assert whole["best_epoch"] in (0.0, 1.0, 2.0) and "last/val/acc" in whole
    assert run(trial(), None, resume_from=tmp_path) == whole  # epoch 2 only, from the checkpoint
    assert run(trial(lr=1e-3), None) != whole  # the metrics follow the config
