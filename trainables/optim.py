"""The loop's optimiser and learning-rate schedule, built from a trial's train settings.

Two optimisers: AdamW (the robust fine-tuning papers) and SGD with momentum (CoOp's and KgCoOp's
Dassl configs). The schedule is per step: a warm-up, then cosine decay to zero over the remaining
steps. The warm-up is linear from zero (``warmup_lr`` unset; the FT papers) or constant at
``warmup_lr`` (Dassl's ``ConstantWarmupScheduler``); it lasts ``warmup_epochs`` epochs when set,
else the fraction ``warmup`` of all steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from trainables.config import TrainConfig


def make_optimizer(groups: list[dict[str, Any]], train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD (with momentum) over the method's parameter groups."""
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay)
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)


def warmup_steps(train: TrainConfig, steps_per_epoch: int) -> int:
    """Steps of warm-up: ``warmup_epochs`` epochs when set, else the fraction ``warmup`` of all steps."""
    if train.warmup_epochs is not None:
        return round(train.warmup_epochs * steps_per_epoch)
    return round(train.warmup * train.epochs * steps_per_epoch)


def warmup_cosine(total_steps: int, warmup: int, constant: float | None = None) -> Callable[[int], float]:
    """LR multiplier per step: ``warmup`` steps of warm-up (linear from zero, or the constant
    multiplier ``constant``), then cosine decay to zero over the remaining steps."""

    def factor(step: int) -> float:
        if step < warmup:
            return constant if constant is not None else (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def make_schedule(
    optimizer: torch.optim.Optimizer, train: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-step warm-up + cosine schedule of ``train``."""
    total = train.epochs * steps_per_epoch
    constant = None if train.warmup_lr is None else train.warmup_lr / train.lr
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total, min(total, warmup_steps(train, steps_per_epoch)), constant)
    )


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float | None) -> None:
    """Clip the global gradient norm of every parameter the optimiser updates (no-op when None)."""
    if max_norm is None:
        return
    parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(parameters, max_norm)
