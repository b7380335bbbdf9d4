"""WiSE-FT (Wortsman et al., CVPR 2022): FT, then weight-space interpolation with zero-shot.

Training is FT (CE on ``s * F_theta(x) @ W``, image tower and head). Afterwards every trained
tensor, the head included, is mixed with its zero-shot value by the shared post-hoc step
(``trainables.posthoc``, which every interpolable method can run through ``posthoc.wise``):

    theta_alpha = (1 - alpha) * theta_zs + alpha * theta_ft,    W_alpha = (1 - alpha) * W_zs + alpha * W_ft

so alpha = 0 is zero-shot CLIP and alpha = 1 the fine-tuned model. What sets wise_ft apart from FT
with ``posthoc.wise`` is only that its final model is the mix at the fixed ``alpha`` and that it
evaluates the curve alpha = 0, step, ..., 1 unasked (``posthoc.wise.alphas`` replaces that grid):
``wise/<alpha>/<metric>``, ``wise/alpha_val`` and ``wise_curve.csv`` / ``wise_curve.md``, as the
loop writes them for every method. The trial reports its last epoch (the interpolated model),
not the best FT epoch.

The zero-shot copy (theta_zs, W_zs) is taken at construction and is not part of the module's
state, hence not in checkpoints: a resumed trial rebuilds it the same way.
"""

from __future__ import annotations

from typing import ClassVar

from trainables.methods.base import ImageClassifier, TrialContext
from trainables.methods.params.wise_ft import WiseParams
from trainables.posthoc import WeightInterpolation, format_alpha
from trainables.registry import register

__all__ = ["WiseFT", "WiseParams", "format_alpha"]


@register("wise_ft")
class WiseFT(ImageClassifier):
    """FT whose final weights are interpolated towards the zero-shot weights."""

    Params = WiseParams
    params: WiseParams
    final_epoch_only: ClassVar[bool] = True  # the earlier epochs are FT, not the interpolated model

    def __init__(self, context: TrialContext, params: WiseParams) -> None:
        super().__init__(context, params)
        self.interpolation = WeightInterpolation(self)

    def interpolate(self, alpha: float) -> None:
        """Set the weights to the mix at ``alpha``; the fine-tuned ones are the current ones on the
        first call."""
        assert self.interpolation is not None  # set in __init__
        self.interpolation.apply(self, alpha)

    def after_training(self) -> None:
        self.interpolate(self.params.alpha)

    @property
    def wise_alpha(self) -> float:
        return self.params.alpha

    def wise_curve_alphas(self) -> list[float]:
        """The curve's grid 0, step, ..., 1, plus the final alpha when it is off the grid."""
        steps = round(1 / self.params.curve_step)
        alphas = [round(k / steps, 6) for k in range(steps + 1)]
        if all(abs(a - self.params.alpha) > 1e-9 for a in alphas):
            alphas = sorted([*alphas, self.params.alpha])
        return alphas
