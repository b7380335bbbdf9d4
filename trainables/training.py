"""The optimisation of one session: its data loader, optimiser, schedule and epochs.

A trial is one session unless it is continual (``trainables.continual``); each session gets its own
optimiser and warm-up + cosine schedule over its own steps, as LoRSU's reference builds a fresh Adam
for each session. The loop (``trainables.loop``) evaluates, selects and checkpoints around it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.data import DataLoader

from trainables.config import Precision, TrialConfig
from trainables.data.base import DomainSplit
from trainables.data.datasets import split_dataset
from trainables.data.transforms import train_transform
from trainables.device import autocast, loader_options
from trainables.errors import NonFiniteLoss
from trainables.methods.base import Method
from trainables.optim import clip_gradients, make_optimizer, make_schedule


def train_step(
    method: Method,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
    grad_clip: float | None = None,
    precision: Precision = "auto",
) -> dict[str, torch.Tensor]:
    """One optimisation step of ``method`` on a batch already on ``device``; returns its loss terms.

    The terms stay tensors: the epoch sums them on the device and reads them once, because a
    ``.item()`` per step would make the CPU wait for the GPU at every step.
    """
    with autocast(device, precision):
        terms = method.training_loss(images, labels)
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    clip_gradients(optimizer, grad_clip)
    optimizer.step()
    scheduler.step()
    return terms


def check_finite(totals: dict[str, torch.Tensor], epoch: int) -> None:
    """Raise :class:`NonFiniteLoss` if any loss term of the epoch was NaN or inf."""
    # A NaN or inf in any step survives into the epoch's sum, so one check per epoch sees it without
    # a per-step GPU sync. Raised before the epoch is reported, so no checkpoint holds the result.
    bad = {name: float(value) for name, value in totals.items() if not math.isfinite(float(value))}
    if bad:
        terms = ", ".join(f"train/{name}={value}" for name, value in sorted(bad.items()))
        raise NonFiniteLoss(f"non-finite loss in epoch {epoch}: {terms}")


class SessionTrainer:
    """Trains ``method`` on one training split: built before the session's first epoch (after
    the method's ``begin_session``, which may add parameters), its state saved with each checkpoint."""

    def __init__(self, method: Method, split: DomainSplit, config: TrialConfig, device: torch.device) -> None:
        self.method, self.config, self.device = method, config, device
        train = config.train
        bundle = method.context.bundle
        scale, ratio = train.crop_scale, train.crop_ratio  # two values each (TrainConfig checks)
        augment = train_transform(
            bundle.image_size, bundle.mean, bundle.std, scale=(scale[0], scale[1]), ratio=(ratio[0], ratio[1])
        )
        self.dataset = split_dataset(split, augment)
        self.loading = loader_options(split.images is not None, config.resources.cpu, device)
        self.steps_per_epoch = math.ceil(len(self.dataset) / train.batch_size)
        self.optimizer = make_optimizer(method.parameter_groups(), train)
        self.scheduler = make_schedule(self.optimizer, train, self.steps_per_epoch)

    def run_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the data in the epoch's seeded order; returns ``train/*`` (mean loss
        terms and the learning rate at the end)."""
        config, train, method = self.config, self.config.train, self.method
        method.train()
        order = torch.Generator().manual_seed(config.seed * 10_007 + epoch)
        loader = DataLoader(self.dataset, batch_size=train.batch_size, shuffle=True, generator=order, **self.loading)
        totals: dict[str, torch.Tensor] = {}
        for images, labels in loader:
            terms = train_step(
                method,
                images.to(self.device),
                labels.to(self.device),
                self.optimizer,
                self.scheduler,
                self.device,
                train.grad_clip,
                train.precision,
            )
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + value.detach().float()
        check_finite(totals, epoch)
        metrics = {f"train/{k}": float(v) / self.steps_per_epoch for k, v in totals.items()}
        metrics["train/lr"] = float(self.scheduler.get_last_lr()[0])  # typed float | Tensor; a float here
        return metrics

    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
