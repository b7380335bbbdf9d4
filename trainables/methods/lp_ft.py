"""LP-FT (Kumar et al., ICLR 2022): linear probe first, then fine-tune everything from the LP head.

Stage 1 (``prepare``, once, before the first epoch): with the pretrained image tower frozen, the
un-augmented training images are encoded once, ``f_i = F_theta0(x_i)`` (L2-normalised), and the
head is fitted on the cached features:

- ``lp_solver: lbfgs`` (default; Kumar et al.'s LP, a scikit-learn logistic regression, as FLYP's
  ``linear_lbfgs.py`` [C]): ``W_lp = argmin_W ||W||^2 / 2 + C * sum_i CE(f_i @ W', y_i)``,
  ``W = W' / s``, no intercept, with C chosen on the ID validation split from ``lp_C_steps``
  log-spaced values in [``lp_C_min``, ``lp_C_max``] (``_linear_probe``). The grid [R]: FLYP
  sweeps logspace(-1, 2) on unnormalised CLIP features; on unit-norm features the same fit needs
  weights ||F(x)|| times larger, i.e. a C ||F(x)||^2 times larger, so the default grid extends
  FLYP's to 1e4, 3 values per decade (the tiny zoo's best C fell in 10-500). Without a
  validation split the fixed ``lp_C`` is used [R].
- ``lp_solver: adamw``: ``W_lp = argmin_W mean_i CE(s * f_i @ W, y_i)`` from the zero-shot head
  with the AdamW LP recipe of the spec (lr 0.01, wd 1e-4, 10 epochs, batch 256, constant lr);
  mini-batches are shuffled by the trial's seeded generator, so ``W_lp`` is a function of the seed.

It reports ``lp/train_acc``, ``lp/val_acc`` (the stage-1 head on un-augmented features) and
``lp/C`` (lbfgs).
Stage 2 (the shared loop): FT of the image tower and the head, ``min_{theta, W} CE(s * F_theta(x)
@ W, y)``, starting from ``(theta0, W_lp)`` with the loop's optimiser and schedule. A fitted head
makes the early FT gradients small, which is what limits feature distortion.
"""

from __future__ import annotations

from typing import ClassVar

from trainables.methods._linear_probe import (
    PROBE_BUFFERS,
    c_grid,
    cached_features,
    fit_linear_head,
    fit_logistic_head,
    probe_metrics,
    record_probe,
    register_probe_buffers,
    validation_features,
)
from trainables.methods.base import Batches, Evaluator, ImageClassifier, TrialContext
from trainables.methods.params.lp_ft import LPFTParams
from trainables.registry import register


@register("lp_ft")
class LinearProbeFineTune(ImageClassifier):
    """FT of the image tower and W, with W first fitted as a linear probe on frozen features."""

    Params = LPFTParams
    params: LPFTParams
    checkpoint_buffers: ClassVar[tuple[str, ...]] = PROBE_BUFFERS

    def __init__(self, context: TrialContext, params: LPFTParams) -> None:
        super().__init__(context, params)
        register_probe_buffers(self)  # NaN until prepare

    def prepare(self, batches: Batches, validation: Batches | None = None) -> None:
        train = cached_features(self, batches)
        held_out = validation_features(self, validation)
        p = self.params
        if p.lp_solver == "lbfgs":
            fit = fit_logistic_head(
                *train,
                self.head.shape[1],
                self.scale,
                validation=held_out,
                grid=c_grid(p.lp_C_min, p.lp_C_max, p.lp_C_steps),
                fixed_C=p.lp_C,
            )
            record_probe(self, fit.head, train, held_out, fit.C)
            return
        head = fit_linear_head(
            *train,
            self.head,
            self.scale,
            epochs=p.lp_epochs,
            lr=p.lp_lr,
            weight_decay=p.lp_weight_decay,
            batch_size=p.lp_batch_size,
            generator=self.context.generator,
        )
        record_probe(self, head, train, held_out)

    def posthoc_metrics(self, evaluate: Evaluator) -> dict[str, float]:
        return probe_metrics(self)
