"""Train (augmenting) and eval transforms; they accept PIL images and uint8 tensors alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from trainables.models.loading import OPENAI_MEAN, OPENAI_STD

# torchvision is imported where it is used: its import (with torch._dynamo) takes over a second,
# which `sweeper validate` and `sweeper methods` (they import this module) should not pay.
if TYPE_CHECKING:
    from torchvision.transforms import v2


def eval_transform(
    image_size: int, mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD
) -> v2.Compose:
    """Resize the short side, centre-crop, scale to [0, 1] and normalise (CLIP's eval pipeline)."""
    from torchvision.transforms import InterpolationMode, v2

    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(image_size, interpolation=InterpolationMode.BICUBIC, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(mean), std=list(std)),
        ]
    )


def train_transform(
    image_size: int,
    mean: Sequence[float] = OPENAI_MEAN,
    std: Sequence[float] = OPENAI_STD,
    scale: tuple[float, float] = (0.8, 1.0),
    flip: bool = True,
    ratio: tuple[float, float] = (0.9, 1.1),
) -> v2.Compose:
    """Random resized crop (area fraction ``scale``, aspect ``ratio``) and horizontal flip, then
    the eval normalisation. The papers' Inception crop is ``scale=(0.08, 1), ratio=(3/4, 4/3)``."""
    from torchvision.transforms import InterpolationMode, v2

    steps: list[v2.Transform] = [
        v2.ToImage(),
        v2.RandomResizedCrop(
            image_size,
            scale=scale,
            ratio=ratio,
            interpolation=InterpolationMode.BICUBIC,
            antialias=True,
        ),
    ]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
    return v2.Compose(steps)


def normalize_batch(
    images: torch.Tensor, mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD
) -> torch.Tensor:
    """Fast path for uint8 batches already at the model's size: scale and normalise only."""
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (images.float() / 255.0 - m) / s
