"""Pareto fronts and hypervolumes: known answers, and Optuna's own as the oracle on random points."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna._hypervolume import compute_hypervolume

from sweeper.tables.pareto import front_indices, hypervolume, pareto
from trainables.errors import InputError


def test_front_of_known_points_keeps_ties_and_drops_the_dominated() -> None:
    points = [[0.6, 0.5], [0.5, 0.6], [0.5, 0.5], [0.6, 0.5], [0.4, 0.7], [0.4, 0.6]]
    # [0.5, 0.5] and [0.4, 0.6] are dominated; the duplicated [0.6, 0.5] stays twice.
    assert front_indices(points, ["max", "max"]) == [0, 1, 3, 4]
    assert front_indices(points, ["min", "min"]) == [2, 5]
    assert front_indices([[0.3, 0.2]], ["max", "min"]) == [0]
    assert front_indices([[np.nan, 0.9], [0.1, 0.1]], ["max", "max"]) == [1]


@pytest.mark.parametrize("modes", [["max", "max"], ["max", "min"], ["min", "max", "max"]])
def test_front_equals_optunas_best_trials(modes: list[str]) -> None:
    rng = np.random.default_rng(len(modes) + modes.count("min"))
    # Rounded values make ties and duplicates likely.
    points = np.round(rng.random((40, len(modes))), 1)
    directions = ["maximize" if m == "max" else "minimize" for m in modes]
    study = optuna.create_study(directions=directions)
    for values in points:
        study.add_trial(
            optuna.trial.create_trial(
                values=[float(v) for v in values], params={}, distributions={}, state=optuna.trial.TrialState.COMPLETE
            )
        )
    assert front_indices(points, modes) == sorted(t.number for t in study.best_trials)


def test_hypervolume_of_known_fronts() -> None:
    # One point: the rectangle up to the reference.
    assert hypervolume([[0.6, 0.7]], ["max", "max"], [0.5, 0.5]) == pytest.approx(0.1 * 0.2)
    # Two points: the union of their rectangles (0.1*0.3 + 0.3*0.1 - 0.1*0.1).
    assert hypervolume([[0.6, 0.8], [0.8, 0.6]], ["max", "max"], [0.5, 0.5]) == pytest.approx(0.05)
    # A point no better than the reference in one objective adds nothing.
    assert hypervolume([[0.4, 0.9]], ["max", "max"], [0.5, 0.5]) == 0.0
    # Mixed modes: maximise ID accuracy, minimise ECE.
    assert hypervolume([[0.7, 0.05]], ["max", "min"], [0.5, 0.10]) == pytest.approx(0.2 * 0.05)


@pytest.mark.parametrize("dims", [2, 3])
def test_hypervolume_equals_optunas(dims: int) -> None:
    rng = np.random.default_rng(dims)
    losses = rng.random((25, dims))
    reference = np.full(dims, 1.1)
    assert hypervolume(losses, ["min"] * dims, reference) == pytest.approx(compute_hypervolume(losses, reference))


def test_pareto_averages_seeds_and_leaves_out_unfinished_trials() -> None:
    df = pd.DataFrame(
        {
            "status": ["FINISHED"] * 6 + ["FAILED"],
            "method": ["ft", "ft", "lipsum_ft", "lipsum_ft", "zeroshot", "zeroshot", "lora"],
            "id/acc": [0.60, 0.62, 0.58, 0.56, 0.53, 0.53, 0.20],
            "ood/avg_acc": [0.50, 0.52, 0.56, 0.54, 0.59, 0.59, 0.99],
        }
    )
    front = pareto(df, ["id/acc", "ood/avg_acc"], by=["method"])
    assert front["method"].tolist() == ["ft", "lipsum_ft", "zeroshot"]
    assert front["id/acc"].tolist() == pytest.approx([0.61, 0.57, 0.53])
    assert front["n"].tolist() == [2, 2, 2]
    assert "ood/avg_acc std" in front.columns
    # Without grouping every finished trial is a point; lipsum_ft's second seed is dominated by its first.
    assert pareto(df, ["id/acc", "ood/avg_acc"]).index.tolist() == [1, 2, 4, 5]


def test_bad_modes_and_metrics_name_the_field() -> None:
    with pytest.raises(InputError, match="modes"):
        front_indices([[0.1, 0.2]], ["max", "up"])
    with pytest.raises(InputError, match="metrics"):
        pareto(pd.DataFrame({"id/acc": [0.5]}), ["id/acc", "ood/avg_acc"])
