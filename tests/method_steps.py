"""A method built on the tiny world and a few optimiser steps on one batch, for the methods' unit
tests (importable: ``tests`` is on the path)."""

from __future__ import annotations

from typing import Any

import torch

from trainables.config import TrialConfig
from trainables.data.shapes_source import ShapesSource
from trainables.data.shapes_world import ShapesConfig
from trainables.data.transforms import normalize_batch
from trainables.loop import build_method

TINY = {"shapes": {"per_class": {"train": 4, "val": 1, "test": 4}}}


def build_tiny(method: str, **params: Any) -> Any:
    """``method`` with ``params`` on tiny-clip and the tiny shapes world, seed 0, on the CPU."""
    config = TrialConfig.model_validate(
        {"method": method, "data": {"source": TINY, "id": "photo"}, "params": params, "seed": 0}
    )
    return build_method(config, torch.device("cpu"))[0]


def tiny_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Twenty normalised photo training images and their labels."""
    split = ShapesSource(ShapesConfig(per_class={"train": 4, "val": 1, "test": 4})).split("photo", "train")
    return normalize_batch(split.images[:20]), split.labels[:20]


def loss_steps(method: Any, count: int, lr: float = 1e-3, reseed: bool = False) -> list[dict[str, float]]:
    """``count`` AdamW steps (no weight decay) on :func:`tiny_batch`; each step's loss terms.
    ``reseed`` seeds torch before every step, so a method's random draws repeat across methods."""
    optimiser = torch.optim.AdamW(method.parameter_groups(), lr=lr, weight_decay=0.0)
    images, labels = tiny_batch()
    method.train()
    history = []
    for _ in range(count):
        if reseed:
            torch.manual_seed(0)
        terms = method.training_loss(images, labels)
        optimiser.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimiser.step()
        history.append({k: v.item() for k, v in terms.items()})
    return history
