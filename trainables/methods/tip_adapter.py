"""Tip-Adapter (Zhang, Zhang, Fang, Gao, Li, Dai, Qiao and Li, ECCV 2022): a training-free cache
model of the few-shot training set on frozen CLIP.

From the official ``main.py`` and ``utils.py`` [C] (methods spec 3.5)::

    keys   K [NK, d] = normalize(mean_e F(aug_e(x_i)))    e = 1..augment_epochs (10)
    values V [NK, C] = one_hot(y_i)
    logits = s * f @ W + alpha * exp(-beta * (1 - f @ K^T)) @ V,   f = normalize(F(x))

W is the frozen zero-shot head of the source's template ensemble (``clip_classifier``); the code
writes 100 for s, OpenAI CLIP's logit scale, and here s is the model's own (about 21.5 on the tiny
zoo) [R]. Each augmented view is a random resized crop of area 0.5-1 (aspect 3/4-4/3) and a
horizontal flip with probability 1/2 [C], applied here to the normalised image tensor with the
trial's seeded generator and bicubic resizing [R: the code crops the PIL image]; the raw features
of the views are averaged, then normalised [C]. ``augment_epochs: 0`` keys the plain view [R].

``search_hp`` (the configs' default [C]) grid-searches beta over 200 values and alpha over 20,
``0.1 + i * (max - 0.1) / steps``, on the ID validation split (never a test split), keeping the
first best accuracy, beta outer, alpha inner, as ``search_hp`` does; the maxima are per dataset
in the configs (ImageNet 7 and 3, DTD 13 and 13), the defaults are ImageNet's. ``alpha`` and
``beta`` are the configs' ``init_alpha`` / ``init_beta`` (dataset-specific; 1 and 1 here [R]),
used as they are without a validation split or with ``search_hp: false`` (a sweep may search them
itself, on ``val/acc``).

The cache is built before evaluation: the loop calls ``prepare`` for a method that does not train
too. Model update: keys, values, alpha and beta are carried unchanged to v2, where the keys (v1
features) meet v2's image features (``trainables.methods._adapter``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from trainables.methods._adapter import ImageAdapter
from trainables.methods.base import Batches, TrialContext
from trainables.methods.params._adapter import CacheParams
from trainables.methods.params.tip_adapter import TipAdapterParams
from trainables.registry import register

CROP_SCALE = (0.5, 1.0)  # the official train_tranform [C]
CROP_RATIO = (3 / 4, 4 / 3)  # torchvision's RandomResizedCrop default, which the code leaves [C]
SEARCH_STEPS = (200, 20)  # beta, alpha (search_step) [C]


def cache_logits(
    features: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, alpha: float, beta: float
) -> torch.Tensor:
    """``alpha * exp(-beta * (1 - f @ K^T)) @ V`` for features f [B, d], keys [N, d], values [N, C]."""
    affinity = features @ keys.T
    return alpha * torch.exp(-beta * (1 - affinity)) @ values


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random resized crop (area ``CROP_SCALE``, aspect ``CROP_RATIO``) back to the input size
    and a horizontal flip with probability 1/2, per image of a [B, 3, H, W] batch."""
    height, width = images.shape[-2:]
    out = []
    for image in images:
        draw = torch.rand(4, generator=generator).tolist()
        area = height * width * (CROP_SCALE[0] + draw[0] * (CROP_SCALE[1] - CROP_SCALE[0]))
        log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
        aspect = math.exp(log_lo + draw[1] * (log_hi - log_lo))
        w = min(width, max(1, round(math.sqrt(area * aspect))))
        h = min(height, max(1, round(math.sqrt(area / aspect))))
        top, left = int(draw[2] * (height - h + 1)), int(draw[3] * (width - w + 1))
        crop = image[:, top : top + h, left : left + w].unsqueeze(0)
        view = F.interpolate(crop, size=(height, width), mode="bicubic", align_corners=False)[0]
        flip = bool(torch.rand(1, generator=generator) < 0.5)
        out.append(view.flip(-1) if flip else view)
    return torch.stack(out)


def search_grid(maximum: float, steps: int) -> list[float]:
    """``search_hp``'s grid: ``steps`` values ``0.1 + i * (maximum - 0.1) / steps``."""
    return [0.1 + i * (maximum - 0.1) / steps for i in range(steps)]


@register("tip_adapter")
class TipAdapter(ImageAdapter):
    """Training-free: zero-shot logits plus a cache of the few-shot training features."""

    Params: ClassVar[type[CacheParams]] = TipAdapterParams
    params: CacheParams
    # Buffers registered in __init__, filled by prepare (annotated: nn.Module's __getattr__ is untyped).
    cache_values: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor
    # The cache is sized by the training set, which the constructor does not see: empty until
    # prepare fills it, and resized by load_state_dict to what it restores.
    checkpoint_buffers: ClassVar[tuple[str, ...]] = ("cache_values", "alpha", "beta")

    def __init__(self, context: TrialContext, params: CacheParams) -> None:
        super().__init__(context, params)
        device, classes = context.device, len(context.classnames)
        self.keys = torch.nn.Parameter(torch.zeros(0, self.feature_dim, device=device), requires_grad=self.trains)
        self.register_buffer("cache_values", torch.zeros(0, classes, device=device))
        self.register_buffer("alpha", torch.tensor(params.alpha, device=device))
        self.register_buffer("beta", torch.tensor(params.beta, device=device))

    def prepare(self, batches: Batches, validation: Batches | None = None) -> None:
        keys, labels = self.build_cache(batches)
        self.keys.data = keys
        self.cache_values = F.one_hot(labels, len(self.context.classnames)).to(keys.dtype)
        if validation is not None and getattr(self.params, "search_hp", False):
            self.search(validation)

    @torch.no_grad()
    def build_cache(self, batches: Batches) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys [N, d] (normalised mean of the views' raw features) and labels [N]."""
        device, views = self.head.device, max(1, self.params.augment_epochs)
        sums, labels = [], []
        for images, y in batches:
            total = torch.zeros(len(y), self.feature_dim, device=device)
            for _ in range(views):
                view = augment(images, self.context.generator) if self.params.augment_epochs else images
                total += self.model.encode_image(view.to(device)).float()
            sums.append(total)
            labels.append(y.to(device))
        if not sums:
            return torch.zeros(0, self.feature_dim, device=device), torch.zeros(0, dtype=torch.long, device=device)
        return F.normalize(torch.cat(sums), dim=-1), torch.cat(labels)

    @torch.no_grad()
    def search(self, validation: Batches) -> None:
        """Set alpha and beta to the grid point with the best ID validation accuracy."""
        p = self.params
        assert isinstance(p, TipAdapterParams)
        features, labels = [], []
        for images, y in validation:
            features.append(self.eval_features(images.to(self.head.device)).float())
            labels.append(y.to(self.head.device))
        if not features:
            return
        f, y = torch.cat(features), torch.cat(labels)
        clip = self.scale * f @ self.head
        affinity = f @ self.keys.T
        best, choice = -1.0, (float(self.alpha), float(self.beta))
        for beta in search_grid(p.search_beta_max, SEARCH_STEPS[0]):
            cache = torch.exp(-beta * (1 - affinity)) @ self.cache_values
            for alpha in search_grid(p.search_alpha_max, SEARCH_STEPS[1]):
                accuracy = (clip + alpha * cache).argmax(dim=1).eq(y).float().mean().item()
                if accuracy > best:
                    best, choice = accuracy, (alpha, beta)
        self.alpha.fill_(choice[0])
        self.beta.fill_(choice[1])

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        features = features.to(self.head.dtype)
        zero_shot = self.scale * features @ self.head
        return zero_shot + cache_logits(features, self.keys, self.cache_values, float(self.alpha), float(self.beta))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        if "keys" in state_dict:
            self.keys.data = torch.empty_like(state_dict["keys"], device=self.keys.device)
        if "cache_values" in state_dict:
            self.cache_values = torch.empty_like(state_dict["cache_values"], device=self.cache_values.device)
        return super().load_state_dict(state_dict, strict, assign)
