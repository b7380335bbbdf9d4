"""The one train/eval loop every method runs in, so that methods differ only in their own file.

AdamW over the method's parameter groups, linear warmup then cosine decay per step, evaluation on
the ID domain and every OOD domain after each epoch, and a checkpoint each epoch. The loop knows
nothing of Ray or MLflow: it hands each epoch's metrics and a checkpoint writer to a reporter.
On CUDA it keeps to the trial's GPU share and runs forward passes in bf16 (``trainables.device``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch.utils.data import DataLoader

from trainables import registry
from trainables.data.sources import open_source
from trainables.data.transforms import train_transform
from trainables.device import TrialResources, autocast, loader_options, share_gpu
from trainables.errors import NonFiniteLoss
from trainables.evaluation import evaluate, eval_batches, retention_metrics
from trainables.methods.base import Method, TrialContext
from trainables.models.loading import load_clip

CheckpointWriter = Callable[[Path], None]
Reporter = Callable[[int, dict[str, float], CheckpointWriter | None], None]
ArtifactSink = Callable[[str, str], None]  # (file name, text)
STATE_FILE = "state.pt"


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | dict[str, Any] = "shapes"
    id: str
    ood: list[str] = []


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup: float = Field(0.1, ge=0, lt=1)
    # OOD domains and retention tasks are evaluated every this many epochs (and always at the
    # last); the ID domain, which the searcher and ASHA read, every epoch.
    eval_every: int = Field(1, ge=1)


TRAIN_KEYS: tuple[str, ...] = tuple(TrainConfig.model_fields)


class TrialConfig(BaseModel):
    """Everything one trial needs; also the schema of ``python -m trainables.run trial.yaml``."""

    model_config = ConfigDict(extra="forbid")
    method: str
    model: str | dict[str, Any] = "zoo/tiny-clip-v1"
    data: DataConfig
    train: TrainConfig = TrainConfig()
    params: dict[str, Any] = {}
    seed: int = 0
    device: str = "auto"
    # Where the trial runs, not what it computes: the sweep leaves it out of the config hash.
    resources: TrialResources = TrialResources()

    @model_validator(mode="after")
    def _method_train_defaults(self) -> TrialConfig:
        """Fill the train keys the trial leaves unset from the method's ``default_train``."""
        defaults = registry.get(self.method).default_train
        unset = {k: v for k, v in defaults.items() if k not in self.train.model_fields_set}
        if unset:
            self.train = TrainConfig(**{**self.train.model_dump(exclude_unset=True), **unset})
        return self


def warmup_cosine(total_steps: int, warmup: float) -> Callable[[int], float]:
    """LR multiplier: linear warmup over ``warmup`` of the steps, then cosine decay to zero."""
    warmup_steps = int(round(warmup * total_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_method(config: TrialConfig, device: torch.device) -> tuple[Method, dict]:
    """Load model and data, and construct the method; returns it with the evaluation splits."""
    method_cls = registry.get(config.method)
    params = method_cls.Params(**config.params)
    bundle = load_clip(config.model, device)
    method_cls.check(params, bundle.context_length)
    source = open_source(config.data.source)
    splits = {d: source.split(d, "test") for d in [config.data.id, *config.data.ood]}
    generator = torch.Generator().manual_seed(config.seed)
    context = TrialContext(bundle, source.classnames, source.templates, generator, device)
    torch.manual_seed(config.seed)
    method = method_cls(context, params).to(device)
    tasks_of = getattr(source, "retention_tasks", None)
    tasks = tasks_of() if tasks_of is not None else {}
    return method, {"source": source, "eval": splits, "tasks": tasks}


def _evaluate(method: Method, data: dict, config: TrialConfig, device: torch.device) -> dict[str, float]:
    with autocast(device):
        return evaluate(method, data["eval"], config.data.id, device)


def _evaluate_all(method: Method, data: dict, config: TrialConfig, device: torch.device,
                  id_only: bool = False) -> dict[str, float]:
    if id_only:
        evaluation = {**data, "eval": {config.data.id: data["eval"][config.data.id]}}
        return _evaluate(method, evaluation, config, device)
    metrics = _evaluate(method, data, config, device)
    with autocast(device):
        metrics.update(retention_metrics(method, data["tasks"], device))
    metrics.update(method.parameter_metrics())
    return metrics


def _finish(method: Method, data: dict, config: TrialConfig, device: torch.device,
            metrics: dict[str, float], artifacts: ArtifactSink | None) -> None:
    """End-of-training extras: post-hoc metrics (WiSE-FT curve, compatibility) and artifacts."""
    metrics.update(method.posthoc_metrics(lambda m: _evaluate(m, data, config, device)))
    if artifacts is not None:
        for name, text in method.artifacts().items():
            artifacts(name, text)


def train_step(
    method: Method, images: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler, device: torch.device,
) -> dict[str, torch.Tensor]:
    """One optimisation step of ``method`` on a batch already on ``device``; returns its loss terms.

    The terms stay tensors: the epoch sums them on the device and reads them once, because a
    ``.item()`` per step would make the CPU wait for the GPU at every step.
    """
    with autocast(device):
        terms = method.training_loss(images, labels)
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    optimizer.step()
    scheduler.step()
    return terms


def _check_finite(totals: dict[str, torch.Tensor], epoch: int) -> None:
    # A NaN or inf in any step survives into the epoch's sum, so one check per epoch sees it without
    # a per-step GPU sync. Raised before the epoch is reported, so no checkpoint holds the result.
    bad = {name: float(value) for name, value in totals.items() if not math.isfinite(float(value))}
    if bad:
        terms = ", ".join(f"train/{name}={value}" for name, value in sorted(bad.items()))
        raise NonFiniteLoss(f"non-finite loss in epoch {epoch}: {terms}")


def run(
    config: TrialConfig | dict[str, Any],
    reporter: Reporter | None = None,
    resume_from: Path | None = None,
    artifacts: ArtifactSink | None = None,
) -> dict[str, float]:
    """Train and evaluate one trial; returns the last epoch's metrics."""
    config = TrialConfig.model_validate(config)
    device = _device(config.device)
    share_gpu(device, config.resources.gpu)  # before the model takes any memory
    method, data = build_method(config, device)
    report = reporter or (lambda epoch, metrics, checkpoint: None)
    if not method.trains:
        metrics = _evaluate_all(method, data, config, device)
        _finish(method, data, config, device, metrics, artifacts)
        report(0, metrics, None)
        return metrics

    train = config.train
    split = data["source"].split(config.data.id, "train")
    bundle = method.context.bundle
    dataset = split.dataset(train_transform(bundle.image_size, bundle.mean, bundle.std))
    loading = loader_options(split.images is not None, config.resources.cpu, device)
    steps_per_epoch = math.ceil(len(dataset) / train.batch_size)
    optimizer = torch.optim.AdamW(method.parameter_groups(), lr=train.lr, weight_decay=train.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(train.epochs * steps_per_epoch, train.warmup)
    )
    start_epoch = 0
    if resume_from is not None:
        state = torch.load(resume_from / STATE_FILE, weights_only=True)
        method.load_state_dict(state["method"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        method.context.generator.set_state(state["method_rng"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch = state["epoch"] + 1
    else:
        method.prepare(eval_batches(split, bundle, train.batch_size))

    metrics: dict[str, float] = {}
    for epoch in range(start_epoch, train.epochs):
        method.train()
        order = torch.Generator().manual_seed(config.seed * 10_007 + epoch)
        loader = DataLoader(dataset, batch_size=train.batch_size, shuffle=True, generator=order, **loading)
        totals: dict[str, torch.Tensor] = {}
        for images, labels in loader:
            terms = train_step(method, images.to(device), labels.to(device), optimizer, scheduler, device)
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + value.detach().float()
        _check_finite(totals, epoch)
        if epoch == train.epochs - 1:
            method.after_training()
        last = epoch == train.epochs - 1
        metrics = _evaluate_all(method, data, config, device, id_only=not last and (epoch + 1) % train.eval_every != 0)
        if last:
            _finish(method, data, config, device, metrics, artifacts)
        metrics.update({f"train/{k}": float(v) / steps_per_epoch for k, v in totals.items()})
        metrics["train/lr"] = scheduler.get_last_lr()[0]

        def write_checkpoint(folder: Path, epoch: int = epoch) -> None:
            torch.save({
                "method": method.trainable_state(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "method_rng": method.context.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch,
            }, folder / STATE_FILE)

        report(epoch, metrics, write_checkpoint)
    return metrics
