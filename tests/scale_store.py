"""One large sweep written into an MLflow store the way ``sweeper launch`` writes it, fast.

Shared by tests/unit/test_bulk_reads.py (500 trials) and bench/bench_scale.py (1,000 and 10,000).
The parent run comes from ``start_sweep`` itself (its tags, description and ``sweep.yaml``); each
trial run carries the tags, params and metrics of ``TrialRun`` and ``sweeper.run.trial`` (provenance
tags, the flat params, ``epochs`` steps of per-epoch metrics, then the summary step: the selected
epoch's values, ``last/*`` and ``best_epoch``, with the ``sweeper.summary_step`` tag). Everything
goes through MLflow's own client, three calls per trial (``create_run``, one ``log_batch``,
``set_terminated``) rather than TrialRun's one call per epoch: the rows stored are the same.

``variety=True`` mixes in what a reader can get wrong: running and failed trials (no summary),
reference trials, a trial logged before selection existed (no summary tag), NaN values, a step
logged twice (a retried attempt), two points with the same timestamp, metrics some epochs skip,
and a deleted trial run.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

SEARCH_DIMS = {"lr": {"float": [1e-5, 1e-2], "log": True}, "L": {"int": [1, 16], "log": False}}
DOMAINS = ("clipart", "sketch", "painting", "infograph")
EPOCH_MS = 60_000  # a synthetic minute per epoch


def metric_names(count: int) -> list[str]:
    """``count`` metric names of a real trial, the report's own first (id/acc, ood/avg_acc, ...)."""
    names = ["id/acc", "ood/avg_acc", "val/acc", "id/ece", "ood/avg_ece", "train/loss", "id/nll"]
    names += [f"ood/{d}/{m}" for d in DOMAINS for m in ("acc", "ece", "nll")]
    names += ["val/ece", "val/nll", "robustness/effective"]
    if count > len(names):
        names += [f"extra/m{k}" for k in range(count - len(names))]
    return names[:count]


@dataclass(frozen=True)
class Shape:
    """What the generated sweep holds."""

    trials: int
    metrics: int = 21
    epochs: int = 4
    seeds: int = 2
    variety: bool = False


def parent_tags(shape: Shape) -> dict[str, str]:
    """The tags ``sweeper launch`` puts on a TPE sweep's parent run."""
    objective = {"metric": "val/acc", "mode": "max", "oracle": False}
    return {
        "sweeper.config_hash": "0123456789ab",
        "sweeper.method": "lipsum_ft",
        "sweeper.report": json.dumps({"rows": ["L"], "metrics": ["id/acc", "ood/avg_acc", "id/ece"]}),
        "sweeper.objective": json.dumps(objective),
        "sweeper.objectives": json.dumps([objective]),
        "sweeper.posthoc": "{}",
        "sweeper.search_keys": json.dumps(sorted(SEARCH_DIMS)),
        "sweeper.references": json.dumps(["zeroshot"]),
        "sweeper.searcher": "tpe",
        "sweeper.search_dims": json.dumps(SEARCH_DIMS),
        "sweeper.total_trials": str(shape.trials),
    }


def sweep_file(name: str, shape: Shape) -> str:
    return (
        f"name: {name}\nmethod: lipsum_ft\nmodel: zoo/tiny-clip-v1\n"
        f"train: {{epochs: {shape.epochs}}}\nsearch: {json.dumps(SEARCH_DIMS)}\n"
        f"seeds: {list(range(shape.seeds))}\nsearcher: tpe\nnum_samples: {shape.trials // shape.seeds}\n"
        "objective: {metric: val/acc, mode: max}\nreference: [zeroshot]\n"
    )


@contextlib.contextmanager
def unsynced_sqlite() -> Iterator[None]:
    """sqlite connections opened meanwhile skip fsync (``PRAGMA synchronous=OFF``): each MLflow call
    commits, and waiting for the disk made generation four times slower. Durability of a
    throw-away store does not matter; the rows written are the same."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def unsynced(connection: Any, _record: Any) -> None:
        if type(connection).__module__.startswith("sqlite3"):
            connection.execute("PRAGMA synchronous=OFF")

    event.listen(Engine, "connect", unsynced)
    try:
        yield
    finally:
        event.remove(Engine, "connect", unsynced)


def generate(
    uri: str, sweep: str, shape: Shape, progress: Callable[[int], None] | None = None, experiment: str | None = None
) -> str:
    """Write one launch of ``sweep`` with ``shape.trials`` trial runs into ``uri``; returns the
    parent run id. ``progress(k)`` is called after every 100th trial."""
    with unsynced_sqlite():
        return _generate(uri, sweep, shape, progress, experiment)


def _generate(
    uri: str, sweep: str, shape: Shape, progress: Callable[[int], None] | None, experiment: str | None
) -> str:
    from mlflow.entities import Param, RunTag
    from mlflow.tracking import MlflowClient

    from sweeper.tracking.runs import SUMMARY_STEP_TAG, start_sweep

    parent = start_sweep(sweep, experiment, uri, parent_tags(shape), sweep_file=sweep_file(sweep, shape))
    client = MlflowClient(uri)
    names = metric_names(shape.metrics)
    start_ms = client.get_run(parent.parent_run_id).info.start_time  # trials start 0.1 s apart
    for k in range(shape.trials):
        trial = _trial(k, shape)
        seed = k % shape.seeds
        tags = {
            "mlflow.parentRunId": parent.parent_run_id,
            "sweeper.kind": "trial",
            "sweeper.sweep": sweep,
            "sweeper.trial_id": f"a1b2c_{k:05d}",
            "sweeper.git_sha": "f" * 40,
            "sweeper.versions": json.dumps({"sweeper": "0.1.0", "torch": "2.14.1", "mlflow": "3.17.2"}),
            "sweeper.method": trial.method,
            "sweeper.seed": str(seed),
            "sweeper.config_hash": f"{k // shape.seeds:012x}",
            **({"sweeper.reference": trial.method} if trial.reference else {}),
        }
        t0 = start_ms + k * 100
        run = client.create_run(parent.experiment_id, start_time=t0, tags=tags, run_name=trial.name(seed))
        params = [Param(key, str(value)) for key, value in sorted({**trial.params, "seed": seed}.items())]
        summary = trial.status == "FINISHED" and trial.summary
        extra = [RunTag(SUMMARY_STEP_TAG, str(trial.epochs))] if summary else []
        if trial.status == "FAILED":
            extra.append(RunTag("sweeper.failure", "RuntimeError: diverged"))
        metrics = _metrics(k, shape, trial, names, t0, summary)
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=extra)
        if trial.status != "RUNNING":
            client.set_terminated(run.info.run_id, trial.status, end_time=t0 + (trial.epochs + 1) * EPOCH_MS)
        if trial.deleted:
            client.delete_run(run.info.run_id)
        if progress and (k + 1) % 100 == 0:
            progress(k + 1)
    last_end = start_ms + shape.trials * 100 + (shape.epochs + 1) * EPOCH_MS
    client.set_terminated(parent.parent_run_id, "FINISHED", end_time=last_end)
    return parent.parent_run_id


@dataclass(frozen=True)
class _Trial:
    method: str
    params: dict[str, object]
    status: str = "FINISHED"
    epochs: int = 4
    reference: bool = False
    summary: bool = True  # False: a run logged before selection existed (no summary step, no tag)
    deleted: bool = False

    def name(self, seed: int) -> str:
        point = " ".join(f"{k}={self.params[k]}" for k in ("L", "lr") if k in self.params)
        marker = "reference" if self.reference else ""
        return " ".join(part for part in (self.method, point, marker, f"seed={seed}") if part)


def _trial(k: int, shape: Shape) -> _Trial:
    """Trial ``k``: a TPE point (the same for its seeds), and under ``variety`` its odd cases."""
    rng = random.Random(k // shape.seeds)
    train = {"epochs": shape.epochs, "batch_size": 128, "weight_decay": 0.0, "warmup": 0.1, "optimizer": "adamw"}
    point = {"lr": f"{10 ** rng.uniform(-5, -2):.3g}", "L": rng.randint(1, 16), "M": 80, "loss": "mse"}
    if k < shape.seeds:  # the first trials are the reference method, evaluated once, never trained
        return _Trial("zeroshot", {**train, "method": "zeroshot"}, epochs=1, reference=True)
    base = _Trial("lipsum_ft", {**train, **point, "method": "lipsum_ft"}, epochs=shape.epochs)
    if not shape.variety:
        return base
    if k % 7 == 3:
        return _Trial(base.method, base.params, "RUNNING", epochs=max(1, shape.epochs - 2))
    if k % 11 == 5:
        return _Trial(base.method, base.params, "FAILED", epochs=1)
    if k % 29 == 9:
        return _Trial(base.method, base.params, summary=False, epochs=shape.epochs)
    if k % 97 == 50:
        return _Trial(base.method, base.params, deleted=True, epochs=shape.epochs)
    return base


def _metrics(k: int, shape: Shape, trial: _Trial, names: list[str], t0: int, summary: bool) -> list:
    """The per-epoch points and, with ``summary``, the summary step (selected epoch, last/*, best_epoch)."""
    from mlflow.entities import Metric

    rng = random.Random(1_000_003 * k + 7)
    values = {(n, e): round(rng.uniform(0.1, 0.9), 6) for n in names for e in range(trial.epochs)}
    points = []
    for epoch in range(trial.epochs):
        stamp = t0 + (epoch + 1) * EPOCH_MS
        for n in names:
            # eval_every > 1: some epochs log no OOD metric
            if not (shape.variety and k % 5 == 1 and n.startswith("ood/") and epoch % 2 == 1):
                points.append(Metric(n, values[n, epoch], stamp, epoch))
    if shape.variety and k % 13 == 0:
        points[len(points) // 2] = Metric(points[len(points) // 2].key, float("nan"), t0 + EPOCH_MS, 0)
    if shape.variety and k % 17 == 1 and trial.epochs > 1:  # a retried attempt wrote step 1 again, later
        points += [Metric(n, values[n, 1] + 0.01, t0 + 10 * EPOCH_MS, 1) for n in names[:3]]
    if shape.variety and k % 19 == 2:  # two points of one step with the same timestamp
        points.append(Metric(names[0], values[names[0], 0] - 0.05, t0 + EPOCH_MS, 0))
    if summary:
        best = max(range(trial.epochs), key=lambda e: values.get(("val/acc", e), 0.0))
        step, stamp = trial.epochs, t0 + (trial.epochs + 1) * EPOCH_MS
        points += [Metric(n, values[n, best], stamp, step) for n in names]
        points += [Metric(f"last/{n}", values[n, trial.epochs - 1], stamp, step) for n in names]
        points.append(Metric("best_epoch", float(best), stamp, step))
    return points
