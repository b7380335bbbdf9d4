"""Search spaces: a grid over ``search`` x ``seeds``, or Optuna (TPE / random) through OptunaSearch.

Dimensions arrive as plain dicts, as written in the sweep file: ``{grid: [...]}``,
``{choice: [...]}``, ``{int: [lo, hi], log: bool}``, ``{float: [lo, hi], log: bool}``, each with an
optional ``when: {param: value}`` condition. Seeds are their own axis: the grid repeats every point
once per seed, and Optuna's suggestions are repeated once per seed by Ray's ``Repeater`` (which
hands the searcher the mean over seeds).
"""

from __future__ import annotations

import functools
import itertools
import random
from typing import Any

import optuna
from ray import tune
from ray.tune.search import Repeater, Searcher
from ray.tune.search.optuna import OptunaSearch

Dimension = dict[str, Any]
TRIAL_INDEX = "__trial_index__"  # set by Repeater: which seed of the point this trial runs
POINT = "point"  # grid trials carry their whole point (seed included) under this key


def condition_holds(dim: Dimension, values: dict[str, Any]) -> bool:
    return all(values.get(key) == wanted for key, wanted in (dim.get("when") or {}).items())


def define_by_run(trial: optuna.Trial, search: dict[str, Dimension], fixed: dict[str, Any]) -> None:
    """Optuna define-by-run space; module level so that OptunaSearch can pickle it."""
    chosen: dict[str, Any] = {}
    for key, dim in search.items():
        if not condition_holds(dim, {**fixed, **chosen}):
            continue
        if "int" in dim:
            low, high = dim["int"]
            chosen[key] = trial.suggest_int(key, low, high, log=bool(dim.get("log")))
        elif "float" in dim:
            low, high = dim["float"]
            chosen[key] = trial.suggest_float(key, low, high, log=bool(dim.get("log")))
        else:
            chosen[key] = trial.suggest_categorical(key, list(dim.get("choice", dim.get("grid"))))


def make_searcher(
    searcher: str,
    points: list[dict[str, Any]],
    search: dict[str, Dimension],
    fixed: dict[str, Any],
    seeds: list[int],
    num_samples: int,
    metric: str,
    mode: str,
    search_seed: int = 0,
    shuffle_grid: bool = False,
) -> tuple[Searcher | None, dict[str, Any], int, int]:
    """Ray's search algorithm, param space, ``num_samples`` and the total number of trials.

    ``points`` are the grid's configurations (``sweeper.grid.grid_points``); other searchers
    ignore them. ``shuffle_grid`` runs the grid in an order drawn from ``search_seed``.
    """
    if searcher == "grid":
        points = [{**p, "seed": s} for p, s in itertools.product(points, seeds)]
        if shuffle_grid:
            # Asynchronous successive halving promotes a trial when it beats the quantile of those
            # that reached its rung before it, which assumes trials arrive in random order. A grid
            # in file order (L = 1, 2, 4, ...) feeds it a trend: each trial beats its predecessors
            # and almost none is stopped.
            random.Random(search_seed).shuffle(points)
        # One grid axis over whole points: conditional keys make the grid non-rectangular.
        return None, {POINT: tune.grid_search(points)}, 1, len(points)
    if searcher == "tpe":
        # Optuna 5 defaults to multivariate TPE; group=True handles conditional dimensions.
        sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
            seed=search_seed, multivariate=True, group=True, n_startup_trials=min(10, max(2, num_samples // 3))
        )
    elif searcher == "random":
        sampler = optuna.samplers.RandomSampler(seed=search_seed)
    else:
        raise ValueError(f"unknown searcher {searcher!r}")
    space = functools.partial(define_by_run, search=search, fixed=fixed)
    optuna_search = OptunaSearch(space=space, metric=metric, mode=mode, sampler=sampler)
    total = num_samples * len(seeds)
    return Repeater(optuna_search, repeat=len(seeds), set_index=True), {}, total, total


def seed_of(config: dict[str, Any], seeds: list[int]) -> int:
    """The seed a trial runs: explicit for the grid, by repeat index for Optuna."""
    config = {**config, **config.get(POINT, {})}
    if "seed" in config:
        return int(config["seed"])
    return seeds[int(config.get(TRIAL_INDEX, 0))]


def point_of(config: dict[str, Any]) -> dict[str, Any]:
    """The searched values of a trial config, without seed bookkeeping."""
    config = {**config, **config.get(POINT, {})}
    return {k: v for k, v in config.items() if k not in ("seed", TRIAL_INDEX, POINT)}
