"""Torch datasets over a :class:`~trainables.data.base.DomainSplit`: images in memory or in files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from trainables.data.base import DomainSplit
from trainables.data.image_files import read_rgb

Transform = Callable[[Any], torch.Tensor]


def split_dataset(split: DomainSplit, transform: Transform | None) -> TensorImages | ImageFiles:
    """The split's images and labels as a dataset, each image passed through ``transform``."""
    if split.images is not None:
        return TensorImages(split.images, split.labels, transform)
    assert split.paths is not None
    return ImageFiles(split.paths, split.labels, transform)


class TensorImages(Dataset):
    """Images held in memory as a uint8 tensor [N, 3, H, W]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Transform | None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        return (self.transform(image) if self.transform else image), int(self.labels[index])


class ImageFiles(Dataset):
    """Images read from files on demand, as RGB."""

    def __init__(self, paths: Sequence[Path], labels: torch.Tensor, transform: Transform | None) -> None:
        self.paths, self.labels, self.transform = list(paths), labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        rgb = read_rgb(self.paths[index])  # a corrupt file fails the trial with its path
        return (self.transform(rgb) if self.transform else rgb), int(self.labels[index])
