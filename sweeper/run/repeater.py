"""Seeds for a searcher: each suggested point runs once per seed, and the searcher is told the mean
of every objective over the seeds (Ray's ``Repeater`` averages one metric only).

A point is scored only when every one of its seeds is: a trial that ends without a finite value of
some objective (``unscored``), or fails, makes the whole point a FAILED Optuna trial, told
explicitly rather than left to Ray's ``OptunaSearch``, which only logs a warning when ``tell()``
refuses a value. A mean over the seeds that happened to survive would not compare with the other
points' means, and would flatter a configuration that diverges on some seeds.
"""

from __future__ import annotations

import base64
import copy
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from sweeper.run.scoring import objective_values

TRIAL_INDEX = "__trial_index__"  # which seed of its point a trial runs (the key Ray's Repeater used)


class SeedRepeater(Searcher):
    """Hands each of the wrapped searcher's suggestions out once per seed (``TRIAL_INDEX`` in the
    config says which) and reports the point back once all its seeds ended.

    The wrapped searcher is kept as ``inner``, not ``searcher``: Tune's ``SearchGenerator`` treats
    any object with a ``searcher`` attribute as a wrapper, checkpoints it with ``get_state`` and
    only the innermost searcher with ``save``. Without it, this class is the one Tune saves, as one
    JSON file that holds the wrapped searcher's file too.
    """

    def __init__(self, inner: Searcher, repeat: int, metrics: Sequence[str], modes: Sequence[str]) -> None:
        self.inner = inner
        self.repeat = repeat
        self.metrics, self.modes = list(metrics), list(modes)
        # A point is named by its first trial's id: its config, and its trials in seed order.
        self.configs: dict[str, dict[str, Any]] = {}
        self.trials: dict[str, list[str]] = {}
        self.point_of: dict[str, str] = {}
        # Each ended trial's objective values; None when it was unscored or failed.
        self.ended: dict[str, list[float] | None] = {}
        self.current: str | None = None
        self.unscored: list[str] = []  # trials that ended without every objective
        self.failed_points: list[str] = []  # points told to the searcher as FAILED
        multi = len(self.metrics) > 1
        super().__init__(
            metric=self.metrics if multi else self.metrics[0],  # type: ignore[arg-type]  # Ray accepts lists
            mode=self.modes if multi else self.modes[0],  # type: ignore[arg-type]
        )

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.current is None or len(self.trials[self.current]) >= self.repeat:
            config = self.inner.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return config
            self.current = trial_id
            self.configs[trial_id] = copy.deepcopy(config)
            self.trials[trial_id] = []
        point = self.current
        self.trials[point].append(trial_id)
        self.point_of[trial_id] = point
        return {**self.configs[point], TRIAL_INDEX: len(self.trials[point]) - 1}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        point = self.point_of.get(trial_id)
        if point is None:
            return  # not one of ours (Tune tells every searcher of every trial)
        values = None if error else objective_values(result, self.metrics)
        if values is None and not error:
            self.unscored.append(trial_id)
        self.ended[trial_id] = values
        seeds = self.trials[point]
        if len(seeds) < self.repeat or any(t not in self.ended for t in seeds):
            return  # a seed is still to start or to end
        scores = [self.ended[t] for t in seeds]
        if any(v is None for v in scores):
            self.failed_points.append(point)
            # error=True with no result: OptunaSearch tells Optuna FAIL (not a warning, not RUNNING).
            self.inner.on_trial_complete(point, result=None, error=True)
            return
        means = [sum(column) / len(column) for column in zip(*scores, strict=True)]
        self.inner.on_trial_complete(point, result=dict(zip(self.metrics, means, strict=True)))

    def save(self, checkpoint_path: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            inner = Path(folder) / "searcher.pkl"
            self.inner.save(str(inner))
            # JSON, not pickle: our part is trial ids, searched values and objective values.
            state = {
                "configs": self.configs,
                "trials": self.trials,
                "ended": self.ended,
                "current": self.current,
                "unscored": self.unscored,
                "failed_points": self.failed_points,
                "inner": base64.b64encode(inner.read_bytes()).decode() if inner.exists() else None,
            }
        Path(checkpoint_path).write_text(json.dumps(state), encoding="utf-8")

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text(encoding="utf-8"))
        self.configs, self.trials, self.ended = state["configs"], state["trials"], state["ended"]
        self.point_of = {trial: point for point, trials in self.trials.items() for trial in trials}
        self.current, self.unscored, self.failed_points = state["current"], state["unscored"], state["failed_points"]
        if state["inner"] is not None:
            with tempfile.TemporaryDirectory() as folder:
                inner = Path(folder) / "searcher.pkl"
                inner.write_bytes(base64.b64decode(state["inner"]))
                self.inner.restore(str(inner))
