"""CLIP-Adapter (Gao, Geng, Zhang, Ma, Fang, Zhang, Li and Qiao, IJCV 2023): a residual feature
adapter on frozen CLIP's image features.

From the official ``clip_adapter.py`` [C] (methods spec 3.4)::

    A(x)  = ReLU(W_2 ReLU(W_1 x))        W_1: d -> d / 4, W_2: d / 4 -> d, no biases
    x'    = ratio * A(x) + (1 - ratio) * x,   x = F(image)            ratio = 0.2
    logits = s * cos(x', w_c)

with both towers and s frozen, w_c the frozen text feature of ONE hand-written template per
dataset (the code's ``CUSTOM_TEMPLATES``, "a photo of a {}." for ImageNet; ``templates:
ensemble`` uses the source's templates instead), nn.Linear's default (Kaiming-uniform) init, and
CE as the loss; only A trains. ``ratio`` and ``reduction`` are parameters; the code hard-codes
0.2 and 4 (the paper tunes the ratio per dataset; its values were not read [U]).

A is bias-free and ReLU is positively homogeneous, so x' scales with x and its direction is the
same whether A is fed F(image) (the code) or normalize(F(image)) (here): the logits are equal,
and the evaluation shares the zero-shot point's encoded features. The code's optimiser and epochs
are CoOp's Dassl configs, which its README says to run it with [R] (``recipes``).

Model update: A was trained on v1's image features and is applied unchanged to v2's
(``trainables.methods._adapter``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainables.methods._adapter import ImageAdapter
from trainables.methods.base import TrialContext
from trainables.methods.params.clip_adapter import ClipAdapterParams
from trainables.registry import register


class Bottleneck(torch.nn.Module):
    """A(x) = ReLU(W_2 ReLU(W_1 x)), bias-free, d -> d / reduction -> d."""

    def __init__(self, dim: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, dim // reduction)
        self.down = torch.nn.Linear(dim, hidden, bias=False)
        self.up = torch.nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.up(F.relu(self.down(x))))


@register("clip_adapter")
class ClipAdapter(ImageAdapter):
    """A residual bottleneck MLP on the frozen image features; CE on the hand-written text head."""

    Params = ClipAdapterParams
    params: ClipAdapterParams

    def __init__(self, context: TrialContext, params: ClipAdapterParams) -> None:
        super().__init__(context, params)
        self.adapter = Bottleneck(self.feature_dim, params.reduction).to(context.device)

    def adapted(self, features: torch.Tensor) -> torch.Tensor:
        """normalize(ratio * A(f) + (1 - ratio) * f) for image features f."""
        ratio = self.params.ratio
        mixed = ratio * self.adapter(features.to(self.head.dtype)) + (1 - ratio) * features
        return F.normalize(mixed, dim=-1)

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * self.adapted(features) @ self.head
