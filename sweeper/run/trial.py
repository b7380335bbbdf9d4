"""The Ray Tune trainable: one trial of a sweep, tracked in MLflow and checkpointed each epoch but its last.

It runs in a Ray worker, which imports it on a trial's first call (``sweeper.run.trial_entry``; the
driver does not import it, nor the torch it needs). It turns the searcher's config into a
``trainables.config.TrialConfig``, reattaches to its MLflow child run on a retry, resumes from Tune's
last checkpoint, and reports each epoch to MLflow first and then to Tune: a crash between the two
makes the retry redo that epoch, and the run skips the step it already holds, so the history has
no gap and no repeat.
"""

from __future__ import annotations

import importlib
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from ray import tune

from sweeper.run.space import point_of, seed_of
from sweeper.spec.references import REFERENCE, REFERENCE_TAG
from sweeper.tracking.provenance import config_hash
from sweeper.tracking.runs import SUMMARY_STEP_TAG, TrialRun
from trainables import registry
from trainables.config import TRAIN_KEYS, TrialConfig
from trainables.errors import NonFiniteLoss
from trainables.loop import CheckpointWriter, run

if TYPE_CHECKING:  # trial_entry imports this module (in the worker): no import back at run time
    from sweeper.run.trial_entry import SweepContext


def trial_config(context: SweepContext, config: dict[str, Any]) -> TrialConfig:
    """Merge a searched point into the sweep's base config: the method's hyperparameters into
    ``params``, train keys into ``train`` (a method parameter wins a name clash, as in the spec)."""
    point = point_of(config)
    method = point.pop("method", context.base["method"])
    method_keys = registry.params(method).model_fields
    # A method-searching sweep's base params hold every searched method's fixed keys; keep ours.
    # A reference runs at its own defaults: the swept method's fixed values are not its own.
    params = (
        {}
        if point.pop(REFERENCE, None)
        else {k: v for k, v in context.base.get("params", {}).items() if k in method_keys}
    )
    base = {**context.base, "method": method, "train": dict(context.base.get("train", {})), "params": params}
    if not registry.params(method).interpolable:
        # Validation refuses posthoc.wise for the swept methods; a reference such as zeroshot or lp
        # runs without it, as it would in a sweep of its own.
        base["posthoc"] = {}
    if not registry.params(method).trains:
        base["sessions"] = None  # a zeroshot reference is the same model in every session
    for key, value in point.items():
        into_train = key in TRAIN_KEYS and key not in method_keys
        (base["train"] if into_train else base["params"])[key] = value
    base["seed"] = seed_of(config, context.seeds)
    return TrialConfig.model_validate(base)


def flat_params(config: TrialConfig, search_keys: list[str]) -> dict[str, Any]:
    """Parameters as MLflow sees them: every method hyperparameter (defaults included), train keys,
    method and seed. A conditional search key this trial does not use (tau of an mse run) is left
    out, so tables show it as absent rather than at its default."""
    resolved = registry.params(config.method)(**config.params).model_dump(mode="json")
    method_params = {k: v for k, v in resolved.items() if k in config.params or k not in search_keys}
    return {**method_params, **config.train.model_dump(), "method": config.method, "seed": config.seed}


def run_name(trial: TrialConfig, point: dict[str, Any]) -> str:
    """A readable MLflow run name: the method, the searched values, the seed (``lipsum_ft L=8 seed=1``;
    ``ft reference seed=1`` for a reference trial)."""
    values = " ".join(f"{k}={_short(v)}" for k, v in point.items() if k not in ("method", REFERENCE))
    marker = REFERENCE if point.get(REFERENCE) else ""
    return " ".join(part for part in (trial.method, values, marker, f"seed={trial.seed}") if part)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def trial_body(name: str | None) -> Any:
    """The function that trains a trial: ``trainables.loop.run``, or the ``module:function`` a
    benchmark names (``SweepContext.trial_body``)."""
    if not name:
        return run
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


def run_trial(config: dict[str, Any], context: SweepContext) -> None:
    """One trial, inside Ray Tune (``sweeper.run.trial_entry.sweep_trainable`` calls it)."""
    torch.set_num_threads(context.threads)
    trial = trial_config(context, config)
    point = point_of(config)
    tune_context = tune.get_context()
    # Resources say where a trial runs, not what it computes: 0.25 or 1 GPU hash alike.
    without_seed = trial.model_dump(mode="json", exclude={"seed", "resources"})
    if trial.posthoc.wise is None:
        without_seed.pop("posthoc")  # the hash of a trial from before posthoc existed stays the same
    if trial.sessions is None:
        without_seed.pop("sessions")  # likewise for sessions
    tags = {
        "sweeper.method": trial.method,
        "sweeper.seed": str(trial.seed),
        "sweeper.config_hash": config_hash(without_seed),
        **({REFERENCE_TAG: str(point[REFERENCE])} if point.get(REFERENCE) else {}),
        **context.extra_tags,
    }
    with TrialRun(
        context.tracking,
        tune_context.get_trial_id(),
        run_name(trial, point),
        flat_params(trial, context.search_keys),
        tags,
    ) as tracked:
        if tracked.finished_metrics is not None:
            tune.report(tracked.finished_metrics)  # the searcher still gets the trial's result
            return
        if tracked.failure.startswith(NonFiniteLoss.__name__):
            # Deterministic divergence: a retry from the last checkpoint would only repeat it.
            raise NonFiniteLoss(tracked.failure.split(": ", 1)[-1])
        tracked.log_text_once("trial.yaml", yaml.safe_dump(trial.model_dump(mode="json"), sort_keys=False))
        resume = None
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            resume = Path(checkpoint.to_directory())

        def reporter(
            epoch: int,
            metrics: dict[str, float],
            checkpoint: CheckpointWriter | None,
            summary: dict[str, float] | None = None,
        ) -> None:
            tracked.log(metrics, step=epoch)
            if summary is not None:
                # One step past the last epoch: MLflow's run table shows each metric's latest value,
                # so it sorts by the selected epoch, as the tables do; history readers skip this step.
                tracked.tag(SUMMARY_STEP_TAG, str(epoch + 1))
                tracked.log(summary, step=epoch + 1)
            if context.fail_once_dir:
                marker = Path(context.fail_once_dir) / tune_context.get_trial_id()
                if not marker.exists():
                    marker.touch()
                    raise RuntimeError("injected failure (SWEEPER_FAIL_ONCE_DIR)")
            # Tune refuses a result without any of the searcher's metrics; a final-only objective
            # is NaN (to Tune only, never to MLflow) until the last epoch computes it. FIFO and the
            # searchers read the last result, which carries the summary; ASHA, which would read
            # the NaNs, is refused for such objectives. One still absent at the end is NaN in the
            # last result too: the searcher counts the trial as unscored.
            result = {**metrics, **(summary or {})}
            for_tune = {**{name: math.nan for name in context.objectives}, **result}
            if checkpoint is None or summary is not None:
                # No checkpoint with the last report: nothing resumes a finished trial (a crash
                # before Tune records the result redoes the last epoch from the one before). And
                # with CheckpointConfig(num_to_keep=2) Tune forces a snapshot of the whole
                # experiment, every trial's state, each time a trial reaches 2 new checkpoints:
                # once per 2-epoch trial, which grew quadratically with the sweep (BENCHMARKS.md,
                # "A driver holding many trials").
                tune.report(for_tune)
                return
            with tempfile.TemporaryDirectory() as folder:
                checkpoint(Path(folder))
                tune.report(for_tune, checkpoint=tune.Checkpoint.from_directory(folder))

        trial_body(context.trial_body)(trial, reporter, resume_from=resume, artifacts=tracked.log_text)
