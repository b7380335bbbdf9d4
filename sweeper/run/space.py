"""Search spaces: a grid over ``search`` x ``seeds``, or Optuna (TPE / random) through OptunaSearch.

Dimensions arrive as plain dicts, as written in the sweep file: ``{grid: [...]}``,
``{choice: [...]}``, ``{int: [lo, hi], log: bool}``, ``{float: [lo, hi], log: bool}``, each with an
optional ``when: {param: value}`` condition. Seeds are their own axis: the grid repeats every point
once per seed, and Optuna's suggestions are repeated once per seed by Ray's ``Repeater`` (which
hands the searcher the mean over seeds).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import random
import tempfile
from pathlib import Path
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
            chosen[key] = trial.suggest_categorical(key, list(dim.get("choice", dim.get("grid")) or ()))


class WithReferences(Searcher):
    """Hands out the reference trials first, then the wrapped searcher's. The references' results
    never reach the searcher: another method's scores would steer it (and Repeater would average
    them into a point it never suggested)."""

    def __init__(self, searcher: Searcher, references: list[dict[str, Any]]) -> None:
        self.searcher = searcher
        self.pending = list(references)
        self.reference_ids: set[str] = set()
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.pending:
            self.reference_ids.add(trial_id)
            return {POINT: self.pending.pop(0)}
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.reference_ids:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.reference_ids:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        # Tune checkpoints a searcher as one file: ours holds the wrapped searcher's file too.
        with tempfile.TemporaryDirectory() as folder:
            inner = Path(folder) / "searcher.pkl"
            self.searcher.save(str(inner))
            # JSON, not pickle: our part is points from the sweep file and trial ids.
            state = {
                "pending": self.pending,
                "reference_ids": sorted(self.reference_ids),
                "searcher": base64.b64encode(inner.read_bytes()).decode() if inner.exists() else None,
            }
        Path(checkpoint_path).write_text(json.dumps(state), encoding="utf-8")

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text(encoding="utf-8"))
        self.pending, self.reference_ids = state["pending"], set(state["reference_ids"])
        if state["searcher"] is not None:
            with tempfile.TemporaryDirectory() as folder:
                inner = Path(folder) / "searcher.pkl"
                inner.write_bytes(base64.b64decode(state["searcher"]))
                self.searcher.restore(str(inner))


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
    references: list[dict[str, Any]] | None = None,
) -> tuple[Searcher | None, dict[str, Any], int, int]:
    """Ray's search algorithm, param space, ``num_samples`` and the total number of trials.

    ``points`` are the grid's configurations (``sweeper.spec.grid.grid_points``); other searchers
    ignore them. ``shuffle_grid`` runs the grid in an order drawn from ``search_seed``.
    ``references`` (``sweeper.spec.references.reference_points``) run first, once per seed, whatever
    the searcher.
    """
    reference_trials = [{**p, "seed": s} for p, s in itertools.product(references or [], seeds)]
    if searcher == "grid":
        points = [{**p, "seed": s} for p, s in itertools.product(points, seeds)]
        if shuffle_grid:
            # Asynchronous successive halving promotes a trial when it beats the quantile of those
            # that reached its rung before it, which assumes trials arrive in random order. A grid
            # in file order (L = 1, 2, 4, ...) feeds it a trend: each trial beats its predecessors
            # and almost none is stopped.
            random.Random(search_seed).shuffle(points)
        points = reference_trials + points
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
    total = num_samples * len(seeds) + len(reference_trials)
    repeated = Repeater(optuna_search, repeat=len(seeds), set_index=True)
    if reference_trials:
        return WithReferences(repeated, reference_trials), {}, total, total
    return repeated, {}, total, total


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
