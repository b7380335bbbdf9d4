"""LP: linear probing of CLIP, the image tower frozen and only the linear head trained with CE.

Logits ``z = s * F_theta0(x) @ W`` with the pretrained image tower ``theta0`` frozen, the fixed
scale ``s`` and only ``W`` [D, K] trained: ``min_W CE(s * F_theta0(x) @ W, y)``. ``W`` starts
from the zero-shot head (``init: zeroshot``) or from zeros (``init: zeros``, the classic probe).
Features are computed without gradient (nothing flows into the frozen tower) and with the tower
in eval mode, so it stays bitwise unchanged. Two solvers:

- ``solver: adamw`` (default): the loop trains W on its augmented batches and schedule, the
  AdamW LP recipe of the spec (lr 0.01, wd 1e-4 [RM: giung2-dev], the Lipsum-FT author's LP).
- ``solver: lbfgs``: Kumar et al.'s and CLIP's LP, as FLYP's ``linear_lbfgs.py`` [C]: before
  training (``prepare``) W is fitted as a scikit-learn multinomial logistic regression on the
  cached un-augmented, L2-normalised features, no intercept, C chosen on the ID validation split
  from ``C_steps`` log-spaced values in [``C_min``, ``C_max``] (grid and fixed-``C`` fallback
  as ``lp_ft``'s, see there and ``_linear_probe``). The loop's epochs then leave W unchanged
  (its group has lr 0 and the loss is a zero without a forward pass), so the trial reports the
  logistic-regression probe; it logs ``lp/train_acc``, ``lp/val_acc`` and ``lp/C``. ``init``
  does not apply (the regularised problem has one optimum).

[R] The default stays ``adamw`` although CLIP and Kumar et al. fit L-BFGS: the loop trains
every ``trains`` method, and a probe fitted in ``prepare`` spends its epochs on no-op steps;
``lbfgs`` becomes the better default once the loop can skip them.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from trainables.methods._linear_probe import (
    PROBE_BUFFERS,
    c_grid,
    cached_features,
    fit_logistic_head,
    probe_metrics,
    record_probe,
    register_probe_buffers,
    validation_features,
)
from trainables.methods.base import Batches, Evaluator, ImageClassifier, TrialContext
from trainables.methods.params.lp import LPParams
from trainables.registry import register


@register("lp")
class LinearProbe(ImageClassifier):
    """CE on ``s * F_theta0(x) @ W`` with the image tower frozen; only W is trained."""

    Params = LPParams
    params: LPParams
    frozen_image_tower = True

    checkpoint_buffers: ClassVar[tuple[str, ...]] = PROBE_BUFFERS

    def __init__(self, context: TrialContext, params: LPParams) -> None:
        super().__init__(context, params)
        self.model.visual.requires_grad_(False)
        if params.init == "zeros" and params.solver == "adamw":
            with torch.no_grad():
                self.head.zero_()
        register_probe_buffers(self)  # NaN unless an lbfgs stage ran

    def prepare(self, batches: Batches, validation: Batches | None = None) -> None:
        p = self.params
        if p.solver != "lbfgs":
            return
        train = cached_features(self, batches)
        held_out = validation_features(self, validation)
        fit = fit_logistic_head(
            *train,
            self.head.shape[1],
            self.scale,
            validation=held_out,
            grid=c_grid(p.C_min, p.C_max, p.C_steps),
            fixed_C=p.C,
        )
        record_probe(self, fit.head, train, held_out, fit.C)

    def parameter_groups(self) -> list[dict]:
        if self.params.solver == "lbfgs":  # fitted in prepare: the loop's steps must not move W
            return [{"params": [self.head], "lr": 0.0, "weight_decay": 0.0}]
        return super().parameter_groups()

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.params.solver == "lbfgs":
            return {"loss": self.head.sum() * 0.0}  # no forward pass: nothing is left to train
        return super().training_loss(images, labels)

    def posthoc_metrics(self, evaluate: Evaluator) -> dict[str, float]:
        return probe_metrics(self)

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.model.visual.eval()  # a frozen feature extractor: no dropout, no running statistics
        return self

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return super().image_features(images)
