"""A disk cache of frozen-encoder image features, keyed by model weights, data split and transform.

Methods that keep the image tower frozen (linear probes, prompt tuning, the LP stage of LP-FT)
encode each split once per model; every later trial reads the features back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from trainables.data.base import DomainSplit, cache_root, digest
from trainables.data.datasets import split_dataset


def feature_key(model_fingerprint: str, split: DomainSplit, transform: Callable) -> str:
    """Cache key; the transform is identified by its repr, which lists every parameter."""
    return digest(model_fingerprint, split.fingerprint, repr(transform))


@torch.no_grad()
def encode_split(
    encoder: Callable[[torch.Tensor], torch.Tensor],
    model_fingerprint: str,
    split: DomainSplit,
    transform: Callable,
    batch_size: int = 256,
    cache_dir: Path | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [N, D] (float32, on CPU) and labels [N] of ``split``, computed once and cached."""
    if "Random" in repr(transform):
        raise ValueError("refusing to cache features under a random (training) transform")
    path = (cache_dir or cache_root() / "features") / f"{feature_key(model_fingerprint, split, transform)}.safetensors"
    if path.is_file():
        stored = load_file(path)
        return stored["features"], stored["labels"]
    loader = DataLoader(split_dataset(split, transform), batch_size=batch_size, shuffle=False)
    chunks = [encoder(x.to(device)).float().cpu() for x, _ in loader]
    features = torch.cat(chunks) if chunks else torch.empty(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({"features": features.contiguous(), "labels": split.labels.contiguous()}, tmp)
    os.replace(tmp, path)
    return features, split.labels
