"""Shared linear-probe pieces: cache frozen image features once, fit a head on them with AdamW
or as a multinomial logistic regression (scikit-learn's L-BFGS, C chosen on ID validation).

The fitted head follows the classifier's logits ``s * f @ W`` with the fixed scale ``s`` of the
pretrained model, so a head fitted here drops straight into :class:`ImageClassifier`.

Logistic regression (Kumar et al.'s LP, FLYP's ``linear_lbfgs.py`` [C]): for each C of a
log-spaced grid, ascending and warm-started from the previous fit as in FLYP, minimise
``||W||^2 / 2 + C * sum_i CE(f_i @ W, y_i)``; keep the C with the best ID validation accuracy
(ties: the smaller C, i.e. the stronger regularisation). FLYP picks C on its eval split; the
validation split here is held out [R]. Without a validation split one fixed C is fitted [R].
No intercept (``fit_intercept=False``) [R]: the classifier, the zero-shot head it starts from,
WiSE-FT's interpolation and LP-FT's second stage all use a bias-free head, and on L2-normalised
CLIP features, which lie in a narrow cone around their mean direction, a per-class bias is
largely expressible by the weights along that direction. ``W = coef.T / s`` then reproduces the
decision function exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from trainables.methods.base import Batches, ImageClassifier

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

LBFGS_MAX_ITER = 1000  # CLIP's linear-probe budget; warm starts make later C values cheap


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
    if not features:  # an empty split
        return torch.empty(0, classifier.head.shape[0], device=device), torch.empty(0, dtype=torch.long, device=device)
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


class LogisticFit(NamedTuple):
    head: torch.Tensor  # W [D, K] for logits s * f @ W
    C: float
    val_acc: float  # NaN without a validation split


def c_grid(low: float, high: float, steps: int) -> list[float]:
    """``steps`` log-spaced values from ``low`` to ``high`` (one value when steps == 1: ``low``)."""
    return np.logspace(math.log10(low), math.log10(high), steps).tolist() if steps > 1 else [low]


def _head_from(model: LogisticRegression, num_classes: int, scale: float) -> torch.Tensor:
    """W [D, K] with ``scale * f @ W`` equal to the decision function (bias-free)."""
    coef = torch.from_numpy(model.coef_).float()
    if coef.shape[0] == 1:  # binary: sigmoid(z) = softmax([-z / 2, z / 2])
        coef = torch.cat([-coef / 2, coef / 2])
    head = torch.zeros(coef.shape[1], num_classes)
    head[:, torch.from_numpy(model.classes_).long()] = coef.T / scale  # absent classes: 0 logits
    return head


def fit_logistic_head(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    scale: torch.Tensor | float,
    *,
    grid: Sequence[float],
    validation: tuple[torch.Tensor, torch.Tensor] | None,
    fixed_C: float,
) -> LogisticFit:
    """Multinomial logistic regression on cached features; C from ``grid`` by validation accuracy,
    or ``fixed_C`` when ``validation`` is None. Deterministic (L-BFGS, no sampling)."""
    # Imported here: scikit-learn takes over a second to import, and only LP and LP-FT fit a probe.
    from sklearn.linear_model import LogisticRegression

    x, y = features.double().cpu().numpy(), labels.cpu().numpy()
    scale = float(scale)
    model = LogisticRegression(fit_intercept=False, max_iter=LBFGS_MAX_ITER, warm_start=True)
    if validation is None:
        model.set_params(C=fixed_C).fit(x, y)
        return LogisticFit(_head_from(model, num_classes, scale), fixed_C, math.nan)
    val_x, val_y = (t.float().cpu() for t in validation)
    best = LogisticFit(torch.empty(0), math.nan, -1.0)
    for C in sorted(grid):
        head = _head_from(model.set_params(C=C).fit(x, y), num_classes, scale)
        accuracy = head_accuracy(val_x, val_y, head)
        if accuracy > best.val_acc:
            best = LogisticFit(head, C, accuracy)
    return best


# Checkpointed results of an LP stage fitted in ``prepare``, so a resumed trial still reports them.
PROBE_BUFFERS: tuple[str, ...] = ("lp_train_acc", "lp_val_acc", "lp_C")


def register_probe_buffers(classifier: ImageClassifier) -> None:
    """NaN until ``record_probe``: the metrics are reported only once a stage has run."""
    for name in PROBE_BUFFERS:
        classifier.register_buffer(name, torch.tensor(math.nan))


def validation_features(
    classifier: ImageClassifier, validation: Batches | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Cached features of the ID validation batches; None when there are none."""
    if validation is None:
        return None
    features, labels = cached_features(classifier, validation)
    return (features, labels) if len(labels) else None


@torch.no_grad()
def record_probe(
    classifier: ImageClassifier,
    head: torch.Tensor,
    train: tuple[torch.Tensor, torch.Tensor],
    validation: tuple[torch.Tensor, torch.Tensor] | None,
    C: float = math.nan,
) -> None:
    """Install the fitted head and fill the probe buffers (accuracies on un-augmented features)."""
    classifier.head.copy_(head)
    classifier.get_buffer("lp_train_acc").fill_(head_accuracy(*train, head.to(train[0].device)))
    if validation is not None:
        classifier.get_buffer("lp_val_acc").fill_(head_accuracy(*validation, head.to(validation[0].device)))
    classifier.get_buffer("lp_C").fill_(C)


def probe_metrics(classifier: ImageClassifier) -> dict[str, float]:
    """``lp/train_acc``, ``lp/val_acc`` and ``lp/C`` (the chosen or fixed C), those that are set."""
    values = {f"lp/{name[3:]}": getattr(classifier, name).item() for name in PROBE_BUFFERS}
    return {k: v for k, v in values.items() if not math.isnan(v)}
