"""LP-FT (Kumar et al., ICLR 2022): linear probe first, then fine-tune everything from the LP head.

Stage 1 (``prepare``, once, before the first epoch): with the pretrained image tower frozen, the
un-augmented training images are encoded once, ``f_i = F_theta0(x_i)``, and the head is fitted on
the cached features from the zero-shot head,
``W_lp = argmin_W mean_i CE(s * f_i @ W, y_i)``,
with the AdamW LP recipe of the spec (lr 0.01, wd 1e-4, 10 epochs, batch 256, constant lr);
mini-batches are shuffled by the trial's seeded generator, so ``W_lp`` is a function of the seed.
Stage 2 (the shared loop): FT of the image tower and the head, ``min_{theta, W} CE(s * F_theta(x)
@ W, y)``, starting from ``(theta0, W_lp)`` with the loop's optimiser and schedule. A fitted head
makes the early FT gradients small, which is what limits feature distortion.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field

from trainables.methods._linear_probe import cached_features, fit_linear_head, head_accuracy
from trainables.methods.base import Batches, Evaluator, ImageClassifier, MethodParams, TrialContext
from trainables.registry import register


class LPFTParams(MethodParams):
    lp_epochs: int = Field(10, ge=1, le=1000, description="epochs of the LP stage over the cached features")
    lp_lr: float = Field(0.01, gt=0, le=1, description="AdamW learning rate of the LP stage (constant)")
    lp_weight_decay: float = Field(1e-4, ge=0, le=1, description="AdamW weight decay of the LP stage")
    lp_batch_size: int = Field(256, ge=1, description="mini-batch size of the LP stage")


@register("lp_ft")
class LinearProbeFineTune(ImageClassifier):
    """FT of the image tower and W, with W first fitted as a linear probe on frozen features."""

    Params = LPFTParams
    params: LPFTParams
    paper: ClassVar[str] = "Kumar et al., ICLR 2022 (LP-FT)"
    checkpoint_buffers: ClassVar[tuple[str, ...]] = ("lp_train_acc",)

    def __init__(self, context: TrialContext, params: LPFTParams) -> None:
        super().__init__(context, params)
        # ID train accuracy of the stage-1 head on the un-augmented features; NaN until prepare.
        self.register_buffer("lp_train_acc", torch.tensor(math.nan))

    def prepare(self, batches: Batches) -> None:
        features, labels = cached_features(self, batches)
        p = self.params
        head = fit_linear_head(
            features, labels, self.head, self.scale,
            epochs=p.lp_epochs, lr=p.lp_lr, weight_decay=p.lp_weight_decay,
            batch_size=p.lp_batch_size, generator=self.context.generator,
        )
        with torch.no_grad():
            self.head.copy_(head)
            self.lp_train_acc.fill_(head_accuracy(features, labels, head))

    def posthoc_metrics(self, evaluate: Evaluator) -> dict[str, float]:
        accuracy = self.lp_train_acc.item()
        return {} if math.isnan(accuracy) else {"lp/train_acc": accuracy}
