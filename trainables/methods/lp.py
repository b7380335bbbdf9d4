"""LP: linear probing of CLIP, the image tower frozen and only the linear head trained with CE.

Logits ``z = s * F_theta0(x) @ W`` with the pretrained image tower ``theta0`` frozen, the fixed
scale ``s`` and only ``W`` [D, K] trained: ``min_W CE(s * F_theta0(x) @ W, y)``. ``W`` starts
from the zero-shot head (``init: zeroshot``) or from zeros (``init: zeros``, the classic probe).
Features are computed without gradient (nothing flows into the frozen tower) and with the tower
in eval mode, so it stays bitwise unchanged. Training runs in the shared loop on its augmented
batches and schedule; LP-FT's stage 1 (``lp_ft``) is the cached-feature variant of the spec.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from trainables.methods.base import ImageClassifier, MethodParams, TrialContext
from trainables.registry import register


class LPParams(MethodParams):
    init: Literal["zeroshot", "zeros"] = Field(
        "zeroshot", description="initial head W: the zero-shot prompt-ensemble head, or all zeros"
    )


@register("lp")
class LinearProbe(ImageClassifier):
    """CE on ``s * F_theta0(x) @ W`` with the image tower frozen; only W is trained."""

    Params = LPParams
    params: LPParams
    frozen_image_tower = True
    paper: ClassVar[str] = "Radford et al., ICML 2021 (CLIP linear probe); Kumar et al., ICLR 2022"
    default_train: ClassVar[dict] = {"lr": 1e-2, "weight_decay": 1e-4}  # the AdamW LP recipe (spec 3.2)

    def __init__(self, context: TrialContext, params: LPParams) -> None:
        super().__init__(context, params)
        self.model.visual.requires_grad_(False)
        if params.init == "zeros":
            with torch.no_grad():
                self.head.zero_()

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.model.visual.eval()  # a frozen feature extractor: no dropout, no running statistics
        return self

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return super().image_features(images)
