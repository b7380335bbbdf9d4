"""Zero-shot CLIP: the pretrained model with its prompt-ensemble head, no training.

``templates: ensemble`` (default) builds W_zs from the data source's templates, as CLIP does;
``single`` from the one ``template``, the zero-shot row that matches the KD target and compat
references of KgCoOp / ContCoOp at their default ``kd_templates: single``.
"""

from __future__ import annotations

import torch

from trainables.methods.base import ImageClassifier, TrialContext
from trainables.methods.params.zeroshot import ZeroShotParams
from trainables.models.heads import zero_shot_head
from trainables.registry import register


@register("zeroshot")
class ZeroShot(ImageClassifier):
    """Evaluates ``s * F(x) @ W_zs``; the reference point every fine-tuning method moves from."""

    frozen_image_tower = True
    Params = ZeroShotParams
    params: ZeroShotParams

    def __init__(self, context: TrialContext, params: ZeroShotParams) -> None:
        super().__init__(context, params)
        if params.templates == "single":
            bundle = context.bundle
            head = zero_shot_head(self.model, bundle.tokenizer, context.classnames, [params.template])
            with torch.no_grad():
                self.head.copy_(head)
