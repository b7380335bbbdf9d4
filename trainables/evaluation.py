"""Evaluate a method on the ID domain and every OOD domain, with the standard metric names."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from trainables.data.base import DomainSplit, RetentionTask
from trainables.data.datasets import split_dataset
from trainables.data.transforms import eval_transform, normalize_batch
from trainables.methods.base import Method
from trainables.metrics import classification_metrics, restrict, summarise
from trainables.models.loading import ClipBundle


def eval_batches(
    split: DomainSplit, bundle: ClipBundle, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised image batches and labels; in-memory images at the model's size skip PIL."""
    if split.images is not None and split.images.shape[-1] == bundle.image_size:
        for start in range(0, len(split), batch_size):
            end = start + batch_size
            yield normalize_batch(split.images[start:end], bundle.mean, bundle.std), split.labels[start:end]
        return
    transform = eval_transform(bundle.image_size, bundle.mean, bundle.std)
    yield from DataLoader(split_dataset(split, transform), batch_size=batch_size, shuffle=False)


@torch.no_grad()
def domain_metrics(
    method: Method,
    splits: dict[str, DomainSplit],
    device: torch.device,
    batch_size: int = 512,
    cache_prefix: str = "eval",
) -> dict[str, dict[str, float]]:
    """Accuracy, ECE and NLL of ``method`` on each split, by domain."""
    was_training = method.training
    method.eval()
    per_domain = {}
    for domain, split in splits.items():
        if method.frozen_image_tower:
            key = f"{cache_prefix}/{domain}/{len(split)}"
            features = _cached_features(method, key, split, device, batch_size)
            logits = [
                method.logits_from_features(features[i : i + batch_size].to(device)).float().cpu()
                for i in range(0, len(features), batch_size)
            ]
            labels = [split.labels]
        else:
            logits, labels = [], []
            for images, y in eval_batches(split, method.context.bundle, batch_size):
                logits.append(method.logits(images.to(device)).float().cpu())
                labels.append(y)
        joined = restrict(torch.cat(logits), split.class_subset)
        per_domain[domain] = classification_metrics(joined, torch.cat(labels))
    method.train(was_training)
    return per_domain


def session_accuracies(method: Method, tests: list[DomainSplit], device: torch.device) -> list[float]:
    """Accuracy of ``method`` on each continual session's test data, in session order (over every
    class: a session's images may be mistaken for another session's class)."""
    per_session = domain_metrics(method, {str(j): t for j, t in enumerate(tests)}, device, cache_prefix="session")
    return [per_session[str(j)]["acc"] for j in range(len(tests))]


def evaluate(
    method: Method,
    splits: dict[str, DomainSplit],
    id_domain: str,
    device: torch.device,
    batch_size: int = 512,
) -> dict[str, float]:
    """``id/*``, ``ood/<domain>/*`` and OOD averages of ``method`` on the given test splits (no
    ``id/*`` when they leave the ID domain out, as a WiSE curve restricted to OOD domains does)."""
    per_domain = domain_metrics(method, splits, device, batch_size)
    per_domain.setdefault(id_domain, {})
    return summarise(per_domain, id_domain)


def validate(
    method: Method,
    id_split: DomainSplit,
    ood_splits: dict[str, DomainSplit],
    device: torch.device,
    batch_size: int = 512,
) -> dict[str, float]:
    """``val/*`` on the ID validation split and ``oodval/<domain>/*`` with averages on held-out
    OOD validation domains: what a trial selects its epoch, and a searcher its configuration, on."""
    splits = {id_split.domain: id_split, **ood_splits}
    per_domain = domain_metrics(method, splits, device, batch_size, cache_prefix="val")
    return summarise(per_domain, id_split.domain, prefixes=("val", "oodval"))


def _cached_features(
    method: Method, key: str, split: DomainSplit, device: torch.device, batch_size: int
) -> torch.Tensor:
    # The image tower is frozen, so a split's features are the same at every epoch: encode once.
    if key not in method.eval_feature_cache:
        chunks = [
            method.eval_features(images.to(device)).float().cpu()
            for images, _ in eval_batches(split, method.context.bundle, batch_size)
        ]
        method.eval_feature_cache[key] = torch.cat(chunks)
    return method.eval_feature_cache[key]


@torch.no_grad()
def retention_metrics(
    method: Method, tasks: dict[str, RetentionTask], device: torch.device, batch_size: int = 512
) -> dict[str, float]:
    """``zs/<task>/acc``: zero-shot accuracy of the method's current towers on held-out tasks,
    with the tasks' hand-written templates (what fine-tuning keeps of the model's open vocabulary)."""
    if not tasks:
        return {}
    was_training = method.training
    method.eval()
    bundle = method.context.bundle
    out = {}
    for name, task in tasks.items():
        head = method.text_head(task.classnames, task.templates).to(device)
        key = f"zs/{name}"
        features = method.eval_feature_cache.get(key)
        if features is None:
            features = torch.cat(
                [
                    method.retention_features(
                        normalize_batch(task.images[i : i + batch_size], bundle.mean, bundle.std).to(device)
                    )
                    .float()
                    .cpu()
                    for i in range(0, len(task.labels), batch_size)
                ]
            )
            if method.frozen_image_tower:  # the same at every epoch: keep them
                method.eval_feature_cache[key] = features
        predicted = (features.to(device) @ head.float()).argmax(dim=1).cpu()
        out[f"{key}/acc"] = (predicted == task.labels).float().mean().item()
    method.train(was_training)
    return out
