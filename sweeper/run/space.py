"""Search spaces: a grid over ``search`` x ``seeds``, or Optuna (TPE, random, NSGA-II, GP) through OptunaSearch.

Dimensions arrive as plain dicts, as written in the sweep file: ``{grid: [...]}``,
``{choice: [...]}``, ``{int: [lo, hi], log: bool}``, ``{float: [lo, hi], log: bool}``, each with an
optional ``when: {param: value}`` condition. Seeds are their own axis: the grid repeats every point
once per seed, and Optuna's suggestions are repeated once per seed by
:class:`sweeper.run.repeater.SeedRepeater` (which hands the searcher the mean of every objective over
the seeds).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import random
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from sweeper.run.heavy_imports import heavy_imports
from sweeper.run.repeater import TRIAL_INDEX, SeedRepeater

# The driver's terminal belongs to the live view: Optuna's INFO lines ("A new study created in
# RDB ...", "Using an existing study ...") say nothing the sweep's own output does not.
optuna.logging.set_verbosity(optuna.logging.WARNING)
# TPESampler(group=True) is what conditional spaces need (infra-facts); its "experimental" notice
# would print at every launch.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module="optuna")

Dimension = dict[str, Any]
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
    them into a point it never suggested).

    The wrapped searcher is ``inner``, not ``searcher``, so that Tune checkpoints this class with
    its ``save`` (one JSON file holding the wrapped searcher's file), as for ``SeedRepeater``.
    """

    def __init__(self, inner: Searcher, references: list[dict[str, Any]]) -> None:
        self.inner = inner
        self.pending = list(references)
        self.reference_ids: set[str] = set()
        super().__init__(metric=inner.metric, mode=inner.mode)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.pending:
            self.reference_ids.add(trial_id)
            return {POINT: self.pending.pop(0)}
        return self.inner.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.reference_ids:
            self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.reference_ids:
            self.inner.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        # Tune checkpoints a searcher as one file: ours holds the wrapped searcher's file too.
        with tempfile.TemporaryDirectory() as folder:
            inner = Path(folder) / "searcher.pkl"
            self.inner.save(str(inner))
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
                self.inner.restore(str(inner))


def _sampler(searcher: str, search_seed: int, num_samples: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of ``searcher``, seeded by ``search_seed`` (see :func:`make_searcher`)."""
    # Random draws before the model takes over: a third of the budget, at least 2, at most 10.
    startup = min(10, max(2, num_samples // 3))
    if searcher == "tpe":
        # Optuna 5 defaults to multivariate TPE; group=True handles conditional dimensions.
        return optuna.samplers.TPESampler(seed=search_seed, multivariate=True, group=True, n_startup_trials=startup)
    if searcher == "random":
        return optuna.samplers.RandomSampler(seed=search_seed)
    if searcher == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=search_seed)
    if searcher == "gp":
        # GPSampler imports torch at its first model-based draw, inside OptunaSearch.suggest, which
        # then warns that the search space took seconds to run. Imported here instead, once, only
        # for gp sweeps, and frozen for the collector (sweeper.run.heavy_imports).
        with heavy_imports():
            import torch  # noqa: F401

        return optuna.samplers.GPSampler(seed=search_seed, n_startup_trials=startup)
    raise ValueError(f"unknown searcher {searcher!r}")


def make_searcher(
    searcher: str,
    points: list[dict[str, Any]],
    search: dict[str, Dimension],
    fixed: dict[str, Any],
    seeds: list[int],
    num_samples: int,
    objectives: Sequence[tuple[str, str]],
    search_seed: int = 0,
    shuffle_grid: bool = False,
    references: list[dict[str, Any]] | None = None,
    study_kwargs: dict[str, Any] | None = None,
) -> tuple[Searcher | None, dict[str, Any], int, int]:
    """Ray's search algorithm, param space, ``num_samples`` and the total number of trials.

    ``objectives`` are ``(metric, mode)`` pairs: one, or several for a multi-objective search
    (Optuna then keeps a Pareto front). ``points`` are the grid's configurations
    (``sweeper.spec.grid.grid_points``); other searchers ignore them. ``shuffle_grid`` runs the
    grid in an order drawn from ``search_seed``. ``references``
    (``sweeper.spec.references.reference_points``) run first, once per seed, whatever the
    searcher. ``study_kwargs`` (an Optuna ``storage`` and ``study_name``, say) go to
    ``OptunaSearch`` as they are.

    The searchers, each seeded by ``search_seed``, and the budgets (``num_samples``) they suit:

    - ``grid``: every point of the grid, in file order (shuffled under ASHA).
    - ``random``: independent uniform draws; the baseline every other searcher must beat.
    - ``tpe``: Optuna's multivariate TPE, single- or multi-objective, conditional dims included.
      Its first ``min(10, max(2, num_samples // 3))`` points are random. From about 20 points.
    - ``nsga2``: Optuna's NSGA-II, a genetic algorithm for Pareto fronts. Its population is 50:
      the first 50 points are exactly random search's draws (generation 0), and points 51-100
      the first generation bred from them, so below about 100 points it is close to random
      search; it pays off at several hundred.
    - ``gp``: Optuna's Gaussian-process sampler (log expected (hypervolume) improvement), single-
      or multi-objective, for small budgets (10-100 points) of costly trials. Its first
      ``min(10, max(2, num_samples // 3))`` points are random; it imports torch, and fits its
      model on every suggestion (about 0.1-0.2 s each at 80 points on two cores). It models only
      dims that every trial has: validation refuses ``when`` dims with it.

    Every searcher but the grid sees each point once, with the mean of every objective over the
    seeds (:class:`sweeper.run.repeater.SeedRepeater`).
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
    metrics, modes = [m for m, _ in objectives], [m for _, m in objectives]
    sampler = _sampler(searcher, search_seed, num_samples)
    space = functools.partial(define_by_run, search=search, fixed=fixed)
    # A list of metrics makes OptunaSearch create a multi-objective study (``directions``) and tell
    # it one value per metric; a single metric keeps the single-objective study of older sweeps.
    multi = len(metrics) > 1
    optuna_search = OptunaSearch(
        space=space,
        metric=metrics if multi else metrics[0],
        mode=modes if multi else modes[0],
        sampler=sampler,
        **(study_kwargs or {}),
    )
    total = num_samples * len(seeds) + len(reference_trials)
    repeated = SeedRepeater(optuna_search, repeat=len(seeds), metrics=metrics, modes=modes)
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
