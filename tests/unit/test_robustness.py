"""The effective-robustness lines of ``trainables.robustness`` against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainables.robustness import effective_robustness, fit_logit_line, logit, logit_line_at, robustness_line


def test_the_zero_shot_line_goes_through_chance_and_the_zero_shot_point() -> None:
    chance, zs_id, zs_ood = 0.1, 0.6, 0.35
    assert robustness_line(chance, zs_id, zs_ood, chance) == pytest.approx(chance)
    assert robustness_line(zs_id, zs_id, zs_ood, chance) == pytest.approx(zs_ood)
    # By hand: slope (0.35 - 0.1) / (0.6 - 0.1) = 0.5, so at ID 0.8 the line is 0.1 + 0.7 * 0.5 = 0.45.
    assert robustness_line(0.8, zs_id, zs_ood, chance) == pytest.approx(0.45)
    assert effective_robustness(0.8, 0.5, zs_id, zs_ood, chance) == pytest.approx(0.05)
    assert effective_robustness(zs_id, zs_ood, zs_id, zs_ood, chance) == pytest.approx(0.0)


def test_a_zero_shot_model_at_chance_draws_no_line() -> None:
    assert math.isnan(robustness_line(0.7, 0.1, 0.1, 0.1))


def test_the_logit_line_fit_recovers_a_known_line_and_matches_numpy() -> None:
    slope, intercept = 0.8, -0.4
    ids = [0.3, 0.5, 0.7, 0.9]
    points = [(i, 1 / (1 + math.exp(-(slope * logit(i) + intercept)))) for i in ids]
    fitted = fit_logit_line(points)
    assert fitted == pytest.approx((slope, intercept))
    assert logit_line_at(0.6, *fitted) == pytest.approx(1 / (1 + math.exp(-(slope * logit(0.6) + intercept))))
    noisy = [(0.3, 0.2), (0.5, 0.26), (0.7, 0.41), (0.85, 0.5)]
    expected = np.polyfit([logit(i) for i, _ in noisy], [logit(o) for _, o in noisy], 1)
    assert fit_logit_line(noisy) == pytest.approx(tuple(expected))


def test_the_fit_needs_two_distinct_id_accuracies() -> None:
    with pytest.raises(ValueError, match="at least two"):
        fit_logit_line([(0.5, 0.4)])
    with pytest.raises(ValueError, match="different ID"):
        fit_logit_line([(0.5, 0.4), (0.5, 0.3)])
