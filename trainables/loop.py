"""The one train/eval loop every method runs in, so that methods differ only in their own file.

The optimiser and warm-up + cosine schedule of the trial's train settings (``trainables.optim``),
evaluation after each epoch on the ID validation split and any held-out OOD validation domains
(every epoch) and on the ID and OOD test splits, and a checkpoint each epoch. The trial reports the
epoch that is best on validation (``trainables.selection``).

Before anything trains or a checkpoint loads, the trial evaluates its zero-shot point once
(``trainables.zeroshot_point``: ``zeroshot/*`` in every report), and every evaluation adds the
effective robustness against it, ``robustness/effective`` (test splits, on fully evaluated epochs)
and ``robustness/effective_val`` (validation splits, every epoch that has OOD validation domains).
After the last epoch, the WiSE curve of ``posthoc.wise`` (or wise_ft's own) is evaluated on the
method's zero-shot-space weights (``trainables.posthoc``: ``wise/<alpha>/<metric>``,
``wise/alpha_val``, ``wise_curve.csv`` / ``.md``), and the model is put back at its own alpha.

A continual trial (``sessions``) runs its sessions in turn, ``train.epochs`` epochs each, every
one with its own optimiser and schedule (``trainables.training``) on its own data
(``trainables.data.sessions``), after the method's ``begin_session`` (and ``prepare`` again when
the method selects per session, as LoRSU does); it logs ``session/<k>/*`` after each and
``continual/*`` after the last (``trainables.continual``), reports the model after the last
session, and checkpoints the whole model, so that resume and retries continue in any session.

Train settings the trial leaves unset come from the method's recipe for the model's family
(``trainables.recipes``). The loop knows nothing of Ray or MLflow: it hands each epoch's metrics,
a checkpoint writer and, after the last epoch, the selected summary to a reporter. On CUDA it
keeps to the trial's GPU share and runs forward passes in bf16 (``trainables.device``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from trainables import registry
from trainables.config import TrialConfig
from trainables.continual import ContinualRecord
from trainables.data.base import DataSource
from trainables.data.sessions import Session, trial_sessions
from trainables.data.sources import open_source
from trainables.device import autocast, share_gpu
from trainables.errors import InputError
from trainables.evaluation import eval_batches, evaluate, retention_metrics, session_accuracies, validate
from trainables.methods.base import Batches, Method, TrialContext
from trainables.models.loading import ClipBundle, load_clip
from trainables.posthoc import WisePlan, curve_artifacts, wise_curve, wise_plan
from trainables.selection import BestEpoch
from trainables.training import SessionTrainer
from trainables.zeroshot_point import point_key, robustness_metrics, zero_shot_point

CheckpointWriter = Callable[[Path], None]
ArtifactSink = Callable[[str, str], None]  # (file name, text)
STATE_FILE = "state.pt"


class Reporter(Protocol):
    """Receives each epoch's metrics and checkpoint writer; after the last epoch also the summary
    (the selected epoch's metrics, ``last/*`` and ``best_epoch``, see ``trainables.selection``)."""

    def __call__(
        self,
        epoch: int,
        metrics: dict[str, float],
        checkpoint: CheckpointWriter | None,
        summary: dict[str, float] | None = None,
    ) -> None: ...


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_method(config: TrialConfig, device: torch.device) -> tuple[Method, dict]:
    """Load model and data, and construct the method; returns it with the evaluation splits."""
    method_cls = registry.get(config.method)
    params = method_cls.Params(**config.params)
    bundle = load_clip(config.model, device)
    params.check_model(bundle.context_length)
    source = open_source(config.data.source)
    splits = {d: source.split(d, "test") for d in [config.data.id, *config.data.ood]}
    validation = {d: source.split(d, "val") for d in [config.data.id, *config.data.ood_val]}
    for domain, split in validation.items():
        if len(split) == 0:  # selection reads it every epoch: fail before training, not after
            raise InputError(
                "data.ood_val" if domain != config.data.id else "data.id",
                f"domain {domain!r} has no validation images (its val split is empty)",
            )
    generator = torch.Generator().manual_seed(config.seed)
    # Prompts read "a photo of a aircraft carrier", not "aircraft_carrier", as CoOp's datasets do.
    classnames = [name.replace("_", " ") for name in source.classnames]
    context = TrialContext(bundle, classnames, source.templates, generator, device, validation[config.data.id])
    torch.manual_seed(config.seed)
    method = method_cls(context, params).to(device)
    tasks_of = getattr(source, "retention_tasks", None)
    tasks = tasks_of() if tasks_of is not None and config.data.retention else {}
    return method, {
        "source": source,
        "eval": splits,
        "val": validation.pop(config.data.id),
        "ood_val": validation,
        "tasks": tasks,
    }


def _evaluate(method: Method, data: dict, config: TrialConfig, device: torch.device) -> dict[str, float]:
    """Test and validation metrics of ``method`` (also what post-hoc variants are scored with),
    with the effective robustness against the trial's zero-shot point once it has one."""
    with autocast(device, config.train.precision):
        metrics = {
            **validate(method, data["val"], data["ood_val"], device),
            **evaluate(method, data["eval"], config.data.id, device),
        }
    metrics.update(robustness_metrics(metrics, data.get("zeroshot")))
    return metrics


def _evaluate_all(
    method: Method, data: dict, config: TrialConfig, device: torch.device, id_only: bool = False
) -> dict[str, float]:
    if id_only:
        evaluation = {**data, "eval": {config.data.id: data["eval"][config.data.id]}}
        return _evaluate(method, evaluation, config, device)
    metrics = _evaluate(method, data, config, device)
    with autocast(device, config.train.precision):
        metrics.update(retention_metrics(method, data["tasks"], device))
    metrics.update(method.parameter_metrics())
    return metrics


def _finish(
    method: Method,
    data: dict,
    config: TrialConfig,
    device: torch.device,
    artifacts: ArtifactSink | None,
    wise: WisePlan | None = None,
) -> dict[str, float]:
    """End-of-training extras: post-hoc metrics (the WiSE curve, compatibility) and artifacts."""
    final = method.posthoc_metrics(lambda m: _evaluate(m, data, config, device))
    texts = method.artifacts()
    if wise is not None and method.interpolation is not None:
        test = {d: s for d, s in data["eval"].items() if wise.domains is None or d in wise.domains}
        curve_data = {**data, "eval": test}
        metrics, rows = wise_curve(
            method,
            method.interpolation,
            wise.alphas,
            lambda m: _evaluate(m, curve_data, config, device),
            method.wise_alpha,
        )
        final.update(metrics)
        texts.update(curve_artifacts(rows, method.name, method.wise_alpha))
    if artifacts is not None:
        for name, text in texts.items():
            artifacts(name, text)
    return final


def _lazy_batches(source: DataSource, domain: str, bundle: ClipBundle, batch_size: int) -> Batches:
    yield from eval_batches(source.split(domain, "train"), bundle, batch_size)


def _no_report(
    epoch: int, metrics: dict[str, float], checkpoint: CheckpointWriter | None, summary: dict[str, float] | None = None
) -> None:
    pass


def run(
    config: TrialConfig | dict[str, Any],
    reporter: Reporter | None = None,
    resume_from: Path | None = None,
    artifacts: ArtifactSink | None = None,
) -> dict[str, float]:
    """Train and evaluate one trial; returns its summary: the metrics of the epoch that is best on
    validation, ``last/*`` of the last epoch, ``best_epoch`` and the end-of-training metrics."""
    config = TrialConfig.model_validate(config)
    device = _device(config.device)
    share_gpu(device, config.resources.gpu)  # before the model takes any memory
    method, data = build_method(config, device)
    wise = wise_plan(method, config.posthoc.wise, list(data["eval"]))  # theta_zs: before any change
    roles = {"test": data["eval"], "val": {config.data.id: data["val"]}, "oodval": data["ood_val"]}
    data["zeroshot"] = zero_shot_point(
        method,
        lambda m: _evaluate(m, data, config, device),
        data["eval"][config.data.id],
        key=point_key(method, roles, config.train.precision),
    )
    zeroshot = data["zeroshot"].logged()
    report = reporter or _no_report
    best = BestEpoch(config.selection)
    if not method.trains:
        # A training-free method may read the training data (Tip-Adapter's cache): lazily, so
        # that one which does not costs nothing.
        size = config.train.batch_size
        train_batches = _lazy_batches(data["source"], config.data.id, method.context.bundle, size)
        method.prepare(train_batches, eval_batches(data["val"], method.context.bundle, size))
        metrics = {**_evaluate_all(method, data, config, device), **zeroshot}
        final = _finish(method, data, config, device, artifacts, wise)
        best.offer(0, metrics, complete=True)
        summary = best.summary(metrics, final)
        report(0, {**metrics, **final}, None, summary)
        return summary

    sessions = trial_sessions(config.sessions, data["source"], data["eval"][config.data.id])
    continual = ContinualRecord() if config.sessions is not None else None
    state = torch.load(resume_from / STATE_FILE, weights_only=True) if resume_from is not None else None
    if continual is not None:
        if state is None:  # before anything trains
            continual.set_zero_shot(
                _session_accuracies(method, sessions, config, device), _retention(method, data, config, device)
            )
        else:
            continual.load(state["continual"])
    start_epoch = 0
    if state is not None:
        method.load_state_dict(state["method"], strict=False)
        method.context.generator.set_state(state["method_rng"])
        torch.set_rng_state(state["torch_rng"])
        best.load(state["best"])
        start_epoch = state["epoch"] + 1

    epochs = config.train.epochs
    summary = {}  # typed where the untrained branch above assigns it
    for index in range(start_epoch // epochs, len(sessions)):
        session, first = sessions[index], max(start_epoch - index * epochs, 0)
        if first == 0 and index > 0:
            method.begin_session()  # before the optimiser: it may replace parameters
        trainer = SessionTrainer(method, session.train, config, device)
        if first > 0:
            assert state is not None  # only a resumed session starts past its first epoch
            trainer.load(state)
        elif index == 0 or method.prepare_each_session:
            size = config.train.batch_size
            bundle = method.context.bundle
            method.prepare(eval_batches(session.train, bundle, size), eval_batches(data["val"], bundle, size))
        for local in range(first, epochs):
            epoch = index * epochs + local
            train_metrics = trainer.run_epoch(epoch)
            session_end = local == epochs - 1
            last = session_end and index == len(sessions) - 1
            if last:
                method.after_training()
            complete = session_end or (local + 1) % config.train.eval_every == 0
            metrics = {**_evaluate_all(method, data, config, device, id_only=not complete), **zeroshot, **train_metrics}
            if continual is not None and session_end:
                accs = _session_accuracies(method, sessions[: index + 1], config, device)
                metrics.update(continual.after_session(accs, metrics))
                if last:
                    metrics.update(continual.summary(metrics))
            # A continual trial reports its model after the last session: an earlier epoch is
            # a model that has not seen every session yet.
            whole = last or not (method.reports_final_epoch() or continual is not None)
            best.offer(epoch, metrics, complete and whole)
            final = _finish(method, data, config, device, artifacts, wise) if last else {}
            summary = best.summary(metrics, final) if last else {}
            writer = _checkpoint_writer(method, trainer, best, continual, epoch)
            report(epoch, {**metrics, **final}, writer, summary or None)
    return summary


def _session_accuracies(
    method: Method, sessions: list[Session], config: TrialConfig, device: torch.device
) -> list[float]:
    with autocast(device, config.train.precision):
        return session_accuracies(method, [s.test for s in sessions], device)


def _retention(method: Method, data: dict, config: TrialConfig, device: torch.device) -> dict[str, float]:
    with autocast(device, config.train.precision):
        return retention_metrics(method, data["tasks"], device)


def _checkpoint_writer(
    method: Method, trainer: SessionTrainer, best: BestEpoch, continual: ContinualRecord | None, epoch: int
) -> CheckpointWriter:
    def write_checkpoint(folder: Path) -> None:
        # A continual trial saves the whole model: weights frozen in this session (LoRSU's base
        # weights, merged from the earlier sessions) are no longer the zero-shot ones.
        weights = method.state_dict() if continual is not None else method.trainable_state()
        torch.save(
            {
                "method": weights,
                **trainer.state(),
                "method_rng": method.context.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "best": best.state(),
                "epoch": epoch,
                **({"continual": continual.state()} if continual is not None else {}),
            },
            folder / STATE_FILE,
        )

    return write_checkpoint
