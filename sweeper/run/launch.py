"""Run a validated sweep with Ray Tune: searcher, scheduler, retries, checkpoints, MLflow, live view.

By default Ray runs embedded (``ray.init(address="local")``: a fresh local instance, never a stale
cluster found through /tmp/ray). Storage goes to ``./sweeps/<name>/``; tracking to the sweep's
MLflow URI, whose store, experiment and parent run exist before the first trial starts.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from sweeper.run.cluster import is_uri, storage_root
from sweeper.run.driving import fit
from sweeper.run.files import check_writable_folder
from sweeper.run.lease import lease_for
from sweeper.run.live import SweepProgress
from sweeper.run.object_store import open_storage, sweep_folder
from sweeper.run.optuna_storage import study_kwargs
from sweeper.run.resume_state import save_resume_state
from sweeper.run.space import make_searcher
from sweeper.run.stopping import StopSignals, SweepStopped
from sweeper.run.trial_entry import SweepContext, sweep_trainable
from sweeper.spec.grid import grid_points
from sweeper.spec.references import reference_points
from sweeper.spec.schema import SweepSpec
from sweeper.tracking.runs import SweepRun, finish_sweep, start_sweep
from sweeper.tracking.uri import check_tracking_uri, resolve_uri
from trainables.selection import selection_for

# Tune's default CSV / JSON / TensorBoard loggers duplicate what MLflow holds.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def objectives_of(spec: SweepSpec) -> list[tuple[str, str]]:
    """Every objective of ``spec`` as ``(metric, mode)``, in file order."""
    return [(o.metric, o.mode) for o in spec.objectives]


def plain_dims(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """Search dimensions as plain dicts in the sweep file's own words (grid/int/float/choice)."""
    return {k: d.model_dump(mode="json", by_alias=True, exclude_none=True) for k, d in spec.search.items()}


def _sweep_text(spec: SweepSpec) -> str:
    """The sweep file as written (or, for a spec built in code, its YAML dump)."""
    if spec.path is not None and spec.path.is_file():
        return spec.path.read_text(encoding="utf-8")
    import yaml

    return yaml.safe_dump(spec.canonical(), sort_keys=False)


def _dumped(value: Any) -> Any:
    return [v.model_dump(mode="json") for v in value] if isinstance(value, list) else value.model_dump(mode="json")


def base_trial(spec: SweepSpec) -> dict[str, Any]:
    """The part of every trial config that the searcher does not change."""
    model = spec.model if isinstance(spec.model, str) else spec.model.model_dump(exclude_none=True)
    return {
        "method": spec.method or spec.methods[0],  # a searched method is set per trial
        "model": model,
        "data": spec.data.model_dump(mode="json"),
        # Only what the file sets: each trial fills the rest from its method's recipe.
        "train": spec.explicit_train(),
        "params": spec.method_keys({}),
        "selection": selection_for(spec.primary_objective.metric, spec.primary_objective.mode).model_dump(),
        "posthoc": spec.posthoc.model_dump(mode="json"),
        **({"sessions": _dumped(spec.sessions)} if spec.sessions is not None else {}),
        # The trial caps its GPU memory at this share and sizes its data-loading workers to the CPUs.
        "resources": spec.resources.model_dump(),
    }


def launch(
    spec: SweepSpec,
    storage: Path | str | None = None,
    console: Console | None = None,
    points: list[dict[str, Any]] | None = None,
    parent_tags: dict[str, str] | None = None,
) -> int:
    """Run every trial of ``spec``; returns 0 when all finished, 1 when any failed.

    ``points`` replaces a grid's own points (``sweeper confirm`` runs chosen configurations);
    ``parent_tags`` are added to the sweep's parent run (e.g. to nest it under another)."""
    console = console or Console()
    uri = resolve_uri(spec.tracking.uri)
    check_tracking_uri(uri, "tracking.uri")
    given = storage is not None
    storage = storage_root(storage)  # a URI (s3://...) as given, a path made absolute
    if is_uri(storage):
        storage = open_storage(storage)  # from here on without credentials: it is printed and tagged
    else:
        check_writable_folder(storage, "--storage")
    hint_storage = storage if given else None  # the resume hint repeats --storage only when it was given
    # The first Ctrl-C or SIGTERM from here on stops the sweep cleanly (sweeper.run.stopping).
    with StopSignals() as stop:
        try:
            # One driver per sweep: refused here, before any MLflow run or trial, while another one
            # runs. Local, NFS and s3:// storage hold a lease; other URI schemes none (sweeper.run.lease).
            with lease_for(sweep_folder(storage, spec.name), spec.name):
                return _launch(spec, storage, console, uri, points, parent_tags, stop, hint_storage)
        except SweepStopped as stopped:  # before the parent run existed: nothing to close or resume
            print(f"sweeper: sweep {spec.name} stopped by {stopped.signal_name} before it started", file=sys.stderr)
            return stopped.exit_code


def _launch(
    spec: SweepSpec,
    storage: str,
    console: Console,
    uri: str,
    points: list[dict[str, Any]] | None,
    parent_tags: dict[str, str] | None,
    stop: StopSignals,
    hint_storage: str | Path | None,
) -> int:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

    stop.check()  # a signal during the imports and the checks: stop before any run exists
    rows = spec.report_rows
    objectives = objectives_of(spec)
    # Tune's own metric is the first objective: ASHA ranks by it (refused with several) and Tune
    # checks each result holds it. It never reaches OptunaSearch, which keeps its own list: Tune
    # only passes its metric to a searcher built without a space, and ours always has one.
    metric, mode = objectives[0]
    if points is None:
        points = grid_points(spec) if spec.searcher == "grid" else []
    # The study lives in the sweep's own database, where optuna-dashboard shows it live (one per launch).
    study = study_kwargs(spec, uri)
    searcher, param_space, num_samples, total = make_searcher(
        spec.searcher,
        points,
        plain_dims(spec),
        dict(spec.fixed),
        list(spec.seeds),
        spec.num_samples,
        objectives,
        spec.search_seed,
        shuffle_grid=spec.scheduler.kind == "asha",
        references=reference_points(spec),
        study_kwargs=study,
    )
    scheduler: TrialScheduler
    if spec.scheduler.kind == "asha":
        scheduler = ASHAScheduler(
            max_t=spec.train_config({}).epochs,
            grace_period=spec.scheduler.grace_period,
            reduction_factor=spec.scheduler.reduction_factor,
        )
    else:
        scheduler = FIFOScheduler()
    tracking = start_sweep(
        spec.name,
        spec.tracking.experiment,
        uri,
        tags={
            "sweeper.config_hash": spec.config_hash(),
            "sweeper.method": spec.method or ",".join(spec.methods),
            "sweeper.report": json.dumps({"rows": rows, "metrics": spec.report.metrics, "delta": spec.report.delta}),
            "sweeper.objective": json.dumps(spec.primary_objective.model_dump()),
            "sweeper.objectives": json.dumps([o.model_dump() for o in spec.objectives]),
            "sweeper.posthoc": json.dumps(spec.posthoc.model_dump(mode="json", exclude_none=True)),
            "sweeper.search_keys": json.dumps(spec.search_keys),
            "sweeper.references": json.dumps(spec.reference),
            "sweeper.searcher": spec.searcher,
            **({"sweeper.optuna_study": study["study_name"]} if study.get("study_name") else {}),
            "sweeper.search_dims": json.dumps(plain_dims(spec)),
            "sweeper.total_trials": str(total),
            "sweeper.max_concurrent": str(spec.max_concurrent or ""),
            "sweeper.storage": storage,  # where `sweeper status` finds the driver's lease
            **(parent_tags or {}),
        },
        sweep_file=_sweep_text(spec),
    )
    # What `sweeper resume` needs to find this launch again, beside Ray Tune's experiment state.
    try:
        save_resume_state(sweep_folder(storage, spec.name), spec, _sweep_text(spec), tracking, total)
    except BaseException:  # e.g. an object store gone since the check: no parent run left RUNNING
        finish_sweep(tracking, {}, aborted=True)
        raise
    trainable = sweep_trainable_for(spec, tracking)
    progress = SweepProgress(total=total, objectives=objectives)

    def make_tuner(callbacks: list) -> Any:
        return tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=mode,
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=num_samples,
                max_concurrent_trials=spec.max_concurrent,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=spec.name,
                storage_path=storage,
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=spec.max_retries),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                callbacks=callbacks,
            ),
        )

    where = sweep_folder(storage, spec.name)
    return fit(make_tuner, spec.name, tracking, progress, where, console, stop, hint_storage)


def sweep_trainable_for(spec: SweepSpec, tracking: SweepRun) -> Any:
    """The Tune trainable of ``spec``'s trials, tracked under ``tracking``, with its resources."""
    from ray import tune

    context = SweepContext(
        tracking=tracking,
        base=base_trial(spec),
        seeds=list(spec.seeds),
        search_keys=spec.search_keys,
        threads=max(1, int(spec.resources.cpu)),
        fail_once_dir=os.environ.get("SWEEPER_FAIL_ONCE_DIR"),
        objectives=[o.metric for o in spec.objectives],
        trial_body=os.environ.get("SWEEPER_TRIAL_BODY") or None,
    )
    return tune.with_resources(
        tune.with_parameters(sweep_trainable, context=context),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
