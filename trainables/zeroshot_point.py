"""A trial's own zero-shot point and its effective robustness against it (issue 19).

Before anything trains or a checkpoint loads, the trial evaluates the ``zeroshot`` method on the
same model, prompts and data (one evaluation pass over the test and validation splits, no
retention tasks) and logs ``zeroshot/id/acc``, ``zeroshot/ood/avg_acc``, ``zeroshot/val/acc`` and
``zeroshot/oodval/avg_acc``. Every evaluation then adds, through :func:`robustness_metrics`,

- ``robustness/effective``: ``ood/avg_acc`` minus the zero-shot line (``trainables.robustness``,
  through chance and the zero-shot ``(id/acc, ood/avg_acc)``) at the model's ``id/acc``;
- ``robustness/effective_val``: the same on validation data, ``oodval/avg_acc`` against the line
  through chance and the zero-shot ``(val/acc, oodval/avg_acc)`` at the model's ``val/acc``; it
  exists at every epoch (validation is), so searchers and selection can use it.

Chance is 1/K for the K classes the ID test split can contain (its ``class_subset`` when it has one).

The point is a function of the weights, the prompts, the splits and the precision, the same for
every trial of a sweep; with a ``key`` (:func:`point_key`) it is kept on disk under
``$SWEEPER_CACHE/zeroshot``, so that only a sweep's first trial on a node pays its evaluation pass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from trainables.config import Precision
from trainables.data.base import DomainSplit, cache_root, digest
from trainables.evaluation import eval_batches
from trainables.methods.base import Method
from trainables.robustness import effective_robustness

# (reported name, ID metric, OOD metric) of the two robustness metrics.
PAIRS = (
    ("robustness/effective", "id/acc", "ood/avg_acc"),
    ("robustness/effective_val", "val/acc", "oodval/avg_acc"),
)
POINT_KEYS = ("id/acc", "ood/avg_acc", "val/acc", "oodval/avg_acc")
# Part of every cache key: bump it when what an evaluation computes changes, so no stale point is read.
POINT_VERSION = 1


@dataclass(frozen=True)
class ZeroShotPoint:
    """The zero-shot model's accuracies on this trial's data, and chance on its ID task."""

    metrics: dict[str, float]
    chance: float

    def logged(self) -> dict[str, float]:
        """``zeroshot/<metric>`` for the point's metrics that exist for the data."""
        return {f"zeroshot/{k}": self.metrics[k] for k in POINT_KEYS if k in self.metrics}


def chance_of(split: DomainSplit, classes: int) -> float:
    """1/K for the classes ``split`` can contain (its ``class_subset``, else all ``classes``)."""
    return 1.0 / (len(split.class_subset) if split.class_subset is not None else classes)


def robustness_metrics(metrics: dict[str, float], point: ZeroShotPoint | None) -> dict[str, float]:
    """``robustness/effective[_val]`` of ``metrics`` for the pairs both it and the point have."""
    if point is None:
        return {}
    out = {}
    for name, id_key, ood_key in PAIRS:
        keys = (id_key, ood_key)
        if all(k in metrics for k in keys) and all(k in point.metrics for k in keys):
            out[name] = effective_robustness(
                metrics[id_key], metrics[ood_key], point.metrics[id_key], point.metrics[ood_key], point.chance
            )
    return out


def point_key(method: Method, splits: dict[str, dict[str, DomainSplit]], precision: Precision) -> str:
    """What the point depends on: the weights, the prompts, each split by role and domain (``test``,
    ``val``, ``oodval``), and the forward passes' precision on this device."""
    context, bundle = method.context, method.context.bundle
    device = context.device
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    roles = sorted((role, d, s.fingerprint) for role, by_domain in splits.items() for d, s in by_domain.items())
    prompts = (list(context.classnames), list(context.templates))
    return digest(POINT_VERSION, bundle.fingerprint, bundle.image_size, bundle.mean, bundle.std, prompts, roles, bf16)


def zero_shot_point(
    method: Method, evaluate: Callable[[Method], dict[str, float]], id_split: DomainSplit, key: str | None = None
) -> ZeroShotPoint:
    """The point of ``key`` on disk if a trial stored it, else the ``zeroshot`` method built on
    ``method``'s context (its model, still at the pretrained weights) evaluated, and stored under
    ``key``. ``method`` is left as it was; a frozen-tower method whose image features are the
    zero-shot ones gets the encoded splits in its feature cache, so it encodes none twice."""
    chance = chance_of(id_split, len(method.context.classnames))
    path = cache_root() / "zeroshot" / f"{key}.json" if key is not None else None
    if path is not None and path.is_file():
        try:
            return ZeroShotPoint({k: float(v) for k, v in json.loads(path.read_text()).items()}, chance)
        except (OSError, ValueError, AttributeError):  # unreadable or damaged: evaluate again, replace it
            pass
    from trainables.methods.zeroshot import ZeroShot  # a method module: imported once it is needed

    model = method.context.bundle.model
    # ImageClassifier's constructor sets the shared model's requires_grad flags; the modes of its
    # modules change when evaluation restores them. Both are the method's to keep.
    flags = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    # No global RNG draw may differ from a trial without the point (a DataLoader draws a seed).
    with torch.random.fork_rng(devices=[]):
        zeroshot = ZeroShot(method.context, ZeroShot.Params())
        zeroshot.eval()
        metrics = evaluate(zeroshot)
        for parameter, flag in zip(model.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)
        for module, mode in zip(model.modules(), modes, strict=True):
            module.training = mode
        _share_features(method, zeroshot, id_split)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # trials on one node may store it at once
            tmp.write_text(json.dumps(metrics, sort_keys=True))
            os.replace(tmp, path)
        except OSError:  # a read-only cache: the point is as good unstored, the next trial evaluates it
            pass
    return ZeroShotPoint(metrics, chance)


@torch.no_grad()
def _share_features(method: Method, zeroshot: Method, split: DomainSplit) -> None:
    # The zero-shot image features are a frozen-tower method's own when its tower is the
    # pretrained one and it normalises F(x) as CLIP does (LP, the prompt learners); checked on a
    # few images rather than assumed, so a method with other features encodes its own.
    if not method.frozen_image_tower or not zeroshot.eval_feature_cache or len(split) == 0:
        return
    images, _ = next(iter(eval_batches(split, method.context.bundle, 4)))
    images = images.to(method.context.device)
    was_training = method.training
    method.eval()
    mine, theirs = method.eval_features(images).float(), zeroshot.eval_features(images).float()
    method.train(was_training)
    if mine.shape == theirs.shape and torch.allclose(mine, theirs, atol=1e-5, rtol=0):
        for name, cached in zeroshot.eval_feature_cache.items():
            method.eval_feature_cache.setdefault(name, cached)
