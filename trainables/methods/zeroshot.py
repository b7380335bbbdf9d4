"""Zero-shot CLIP: the pretrained model with its prompt-ensemble head, no training.

``templates: ensemble`` (default) builds W_zs from the data source's templates, as CLIP does;
``single`` from the one ``template``, the zero-shot row that matches the KD target and compat
references of KgCoOp / ContCoOp at their default ``kd_templates: single``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from trainables.methods.base import ImageClassifier, MethodParams, TrialContext
from trainables.models.heads import zero_shot_head
from trainables.registry import register


class ZeroShotParams(MethodParams):
    templates: Literal["ensemble", "single"] = Field("ensemble", description=(
        "head from the data source's template ensemble (CLIP), or from the one template"))
    template: str = Field("a photo of a {}.", pattern=r"^[^{}]*\{\}[^{}]*$", description=(
        "the template of templates: single (the prompt methods' kd_template default)"))


@register("zeroshot")
class ZeroShot(ImageClassifier):
    """Evaluates ``s * F(x) @ W_zs``; the reference point every fine-tuning method moves from."""

    trains = False
    frozen_image_tower = True
    paper = "Radford et al., ICML 2021 (CLIP)"
    Params = ZeroShotParams
    params: ZeroShotParams

    def __init__(self, context: TrialContext, params: ZeroShotParams) -> None:
        super().__init__(context, params)
        if params.templates == "single":
            bundle = context.bundle
            head = zero_shot_head(self.model, bundle.tokenizer, context.classnames, [params.template])
            with torch.no_grad():
                self.head.copy_(head)
