"""Shared linear-probe pieces: cache frozen image features once, fit a head on them with AdamW.

The fitted head follows the classifier's logits ``s * f @ W`` with the fixed scale ``s`` of the
pretrained model, so a head fitted here drops straight into :class:`ImageClassifier`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainables.methods.base import Batches, ImageClassifier


@torch.no_grad()
def cached_features(classifier: ImageClassifier, batches: Batches) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised features [N, D] of the classifier's current image tower, in eval mode, and
    the labels [N]; both on the classifier's device."""
    was_training = classifier.training
    classifier.eval()
    device = classifier.head.device
    features, labels = [], []
    for images, y in batches:
        features.append(classifier.image_features(images.to(device)).float())
        labels.append(y.to(device))
    classifier.train(was_training)
    return torch.cat(features), torch.cat(labels)


def fit_linear_head(
    features: torch.Tensor,
    labels: torch.Tensor,
    head: torch.Tensor,
    scale: torch.Tensor | float,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Minimise CE of ``scale * features @ W`` over W [D, K] from ``head`` with AdamW (constant
    lr), shuffled mini-batches drawn from ``generator``; returns the fitted W, detached."""
    weight = torch.nn.Parameter(head.detach().clone().float())
    optimizer = torch.optim.AdamW([weight], lr=lr, weight_decay=weight_decay)
    count = features.shape[0]
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(count, generator=generator).to(features.device)
            for start in range(0, count, batch_size):
                index = order[start : start + batch_size]
                loss = F.cross_entropy(scale * features[index] @ weight, labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return weight.detach().to(head.dtype)


@torch.no_grad()
def head_accuracy(features: torch.Tensor, labels: torch.Tensor, head: torch.Tensor) -> float:
    """Top-1 accuracy of ``features @ head`` (the scale does not change the argmax)."""
    return (features @ head.float()).argmax(dim=1).eq(labels).float().mean().item()
