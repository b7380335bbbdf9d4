"""The ID × OOD trade-off: Pareto fronts and their hypervolume, computed once for reports and pandas.

A point dominates another when it is at least as good in every objective and strictly better in
one (Optuna's definition, so a front here is ``study.best_trials`` on the same values). Duplicated
points are all on the front, as in Optuna. Objectives come with a mode each, ``max`` or ``min``;
internally everything is turned into minimisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from trainables.errors import InputError

MODES = ("max", "min")


def _as_losses(points: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """``points`` [n, d] as values to minimise: ``max`` objectives change sign."""
    if points.ndim != 2 or points.shape[1] != len(modes):
        raise InputError("modes", f"{len(modes)} modes for points of {points.shape[-1]} objectives")
    for mode in modes:
        if mode not in MODES:
            raise InputError("modes", f"mode {mode!r} is not max or min")
    signs = np.array([-1.0 if mode == "max" else 1.0 for mode in modes])
    return points * signs


def front_indices(points: Sequence[Sequence[float]] | np.ndarray, modes: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points, in their input order. A point with a NaN is never on it."""
    values = np.asarray(points, dtype=float).reshape(-1, len(modes))
    losses = _as_losses(values, modes)
    finite = ~np.isnan(losses).any(axis=1)
    front = []
    for i in np.flatnonzero(finite):
        others = losses[finite]
        dominated = np.any(np.all(others <= losses[i], axis=1) & np.any(others < losses[i], axis=1))
        if not dominated:
            front.append(int(i))
    return front


class RunningFront:
    """The front of points that arrive one at a time, kept as they come: each point costs one pass
    over the current front, where ``front_indices`` over all n points costs n passes (a sweep's
    live view adds every finished trial; at 2,000 trials that was 4 million comparisons per trial).
    Same definition as ``front_indices``: duplicates all stay, a point with a NaN never enters."""

    def __init__(self, modes: Sequence[str]) -> None:
        self.signs = _as_losses(np.ones((1, len(modes))), modes)[0]
        self.losses = np.empty((0, len(modes)))

    def add(self, point: Sequence[float]) -> None:
        loss = np.asarray(point, dtype=float) * self.signs
        if np.isnan(loss).any():
            return
        front = self.losses
        if np.any(np.all(front <= loss, axis=1) & np.any(front < loss, axis=1)):
            return  # dominated: the front is unchanged
        beaten = np.all(loss <= front, axis=1) & np.any(loss < front, axis=1)
        self.losses = np.vstack([front[~beaten], loss])

    def __len__(self) -> int:
        return len(self.losses)


def _volume(losses: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume of minimisation ``losses`` up to ``reference``, by slicing the first axis."""
    if len(losses) == 0:
        return 0.0
    if losses.shape[1] == 1:
        return float(reference[0] - losses[:, 0].min())
    order = losses[np.argsort(losses[:, 0])]
    volume = 0.0
    for k in range(len(order)):
        right = order[k + 1, 0] if k + 1 < len(order) else reference[0]
        width = right - order[k, 0]
        if width > 0:
            volume += width * _volume(order[: k + 1, 1:], reference[1:])
    return volume


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray, modes: Sequence[str], reference: Sequence[float]
) -> float:
    """The volume that ``points`` dominate up to ``reference`` (the zero-shot point, say): a point no
    better than the reference in every objective adds nothing. Exact; for the fronts of a sweep."""
    values = np.asarray(points, dtype=float).reshape(-1, len(modes))
    losses = _as_losses(values, modes)
    bound = _as_losses(np.asarray(reference, dtype=float).reshape(1, -1), modes)[0]
    inside = losses[np.all(losses < bound, axis=1) & ~np.isnan(losses).any(axis=1)]
    return _volume(inside[front_indices(inside, ["min"] * len(modes))], bound)


def pareto(
    df: pd.DataFrame, metrics: Sequence[str], modes: Sequence[str] | None = None, by: Sequence[str] | None = None
) -> pd.DataFrame:
    """The rows of ``df`` (a ``results.load`` frame) on the front of ``metrics`` (``max`` each by
    default). With ``by`` (configuration columns), configurations are averaged over their rows
    (seeds) first and the front holds one row per configuration, with ``<metric> std`` and ``n``.
    Rows whose ``status`` is not FINISHED (a failure or a stop before the last epoch) are left
    out: an under-trained model sits near zero-shot and would look non-dominated."""
    modes = list(modes) if modes is not None else ["max"] * len(metrics)
    missing = [m for m in [*metrics, *(by or [])] if m not in df.columns]
    if missing:
        raise InputError("metrics", f"no column {missing[0]!r} in the results")
    finished = df[df["status"] == "FINISHED"] if "status" in df.columns else df
    if by:
        grouped = finished.groupby(list(by), dropna=False)[list(metrics)]
        table = grouped.mean().join(grouped.std().add_suffix(" std")).join(grouped.size().rename("n")).reset_index()
    else:
        table = finished
    rows = front_indices(table[list(metrics)].to_numpy(dtype=float), modes)
    return table.iloc[rows]
