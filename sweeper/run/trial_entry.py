"""What the driver hands Ray Tune for each trial, importable without torch or MLflow.

The driver only ships ``sweep_trainable`` and its ``SweepContext``; Ray pickles the function by
reference, so a worker imports this small module when the trial arrives and the trial's heavy
modules (torch, MLflow's store, the training loop: ``sweeper.run.trial``) on the first call, so the
driver does not import them just to launch a sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeper.run.heavy_imports import heavy_imports

if TYPE_CHECKING:
    from sweeper.tracking.runs import SweepRun


@dataclass(frozen=True)
class SweepContext:
    """What every trial of a sweep shares; built by the driver, shipped with the trainable."""

    tracking: SweepRun
    base: dict[str, Any]  # TrialConfig fields without seed; fixed values already merged
    seeds: list[int]
    search_keys: list[str] = field(default_factory=list)
    threads: int = 1
    extra_tags: dict[str, str] = field(default_factory=dict)
    # Testing hook: with a folder here, each trial fails once after its first report.
    fail_once_dir: str | None = None
    # The metrics the searcher optimises (the first is also Tune's). Some exist only after the
    # last epoch (compat/*, wise/*).
    objectives: list[str] = field(default_factory=list)
    # Benchmarking hook: ``module:function`` run in place of ``trainables.loop.run`` (the
    # harness benchmark's ``trainables.sleep_trial:run``); None for every real sweep.
    trial_body: str | None = None


def sweep_trainable(config: dict[str, Any], context: SweepContext) -> None:
    """Ray Tune function trainable: one trial of the sweep (see ``sweeper.run.trial.run_trial``)."""
    with heavy_imports():  # a worker's first trial imports torch, and MLflow's store, here
        from mlflow.tracking import MlflowClient

        from sweeper.run.trial import run_trial

        MlflowClient(context.tracking.uri)  # builds the store (SQLAlchemy for sqlite), which MLflow caches per URI
    run_trial(config, context)
