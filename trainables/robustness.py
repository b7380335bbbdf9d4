"""Effective robustness: OOD accuracy above the line that a reference family of models draws.

Taori et al. (NeurIPS 2020) and Wortsman et al. (WiSE-FT, CVPR 2022) plot OOD against ID accuracy.
A model's *effective robustness* is its OOD accuracy minus the OOD accuracy the reference line
predicts at its ID accuracy. Two lines are used here:

- :func:`robustness_line`: the zero-shot line, through chance ``(1/K, 1/K)`` and the zero-shot
  model's own ``(ID, OOD)`` point, measured on the same model and data. Trials log
  ``robustness/effective`` against it, and the findings report reads the same line.
- :func:`fit_logit_line`: the "accuracy on the line" fit (Miller et al., ICML 2021), a least-squares
  line through many models' points on logit-scaled accuracies; :func:`logit_line_at` evaluates it.

Plain floats, no torch: the driver, the reports and the trials all import this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def robustness_line(id_acc: float, zs_id: float, zs_ood: float, chance: float) -> float:
    """The OOD accuracy that the zero-shot line predicts at ``id_acc``: the straight line through
    ``(chance, chance)`` and ``(zs_id, zs_ood)``. NaN when the zero-shot model is at chance on ID."""
    if math.isclose(zs_id, chance):
        return math.nan
    return chance + (id_acc - chance) * (zs_ood - chance) / (zs_id - chance)


def effective_robustness(id_acc: float, ood_acc: float, zs_id: float, zs_ood: float, chance: float) -> float:
    """``ood_acc`` minus the zero-shot line at ``id_acc``: > 0 above the line, 0 for zero-shot itself."""
    return ood_acc - robustness_line(id_acc, zs_id, zs_ood, chance)


def logit(p: float, eps: float = 1e-6) -> float:
    """``log(p / (1 - p))``, with ``p`` clipped to ``[eps, 1 - eps]`` so that 0 and 1 stay finite."""
    p = min(max(p, eps), 1 - eps)
    return math.log(p / (1 - p))


def fit_logit_line(points: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """``(slope, intercept)`` of the least-squares line ``logit(OOD) = slope * logit(ID) + intercept``
    through ``(ID, OOD)`` accuracy points; needs two points with different ID accuracies."""
    pairs = [(logit(i), logit(o)) for i, o in points]
    if len(pairs) < 2:
        raise ValueError(f"fitting a line needs at least two (ID, OOD) points, got {len(pairs)}")
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        raise ValueError("fitting a line needs points with different ID accuracies")
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return slope, mean_y - slope * mean_x


def logit_line_at(id_acc: float, slope: float, intercept: float) -> float:
    """The OOD accuracy a logit-scaled line predicts at ``id_acc``."""
    return 1 / (1 + math.exp(-(slope * logit(id_acc) + intercept)))
