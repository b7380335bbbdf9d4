"""WiSE-FT (Wortsman et al., CVPR 2022): FT, then weight-space interpolation with zero-shot.

Training is FT (CE on ``s * F_theta(x) @ W``, image tower and head). Afterwards every trained
tensor, the head included, is mixed with its zero-shot value:

    theta_alpha = (1 - alpha) * theta_zs + alpha * theta_ft,    W_alpha = (1 - alpha) * W_zs + alpha * W_ft

so alpha = 0 is zero-shot CLIP and alpha = 1 the fine-tuned model. The final model uses the
fixed ``alpha``; ``posthoc_metrics`` also evaluates the curve alpha = 0, step, ..., 1 as
``wise/<alpha>/<metric>`` (validation metrics included) and reports ``wise/alpha_val``, the alpha
with the best ID validation accuracy, which is how the paper chooses it; ``artifacts`` writes the
curve as ``wise_curve.csv`` / ``wise_curve.md``. The trial reports its last epoch (the
interpolated model), not the best FT epoch.

The zero-shot copy (theta_zs, W_zs) is taken from the pretrained model at construction and is
not part of the module's state, hence not in checkpoints: a resumed trial rebuilds it the same way.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from trainables.methods.base import Evaluator, ImageClassifier, TrialContext
from trainables.methods.params.wise_ft import WiseParams
from trainables.registry import register

CURVE_COLUMNS = ("alpha", "val_acc", "id_acc", "ood_avg_acc", "id_ece", "id_nll", "ood_avg_ece")


def format_alpha(alpha: float) -> str:
    """``0.0``, ``0.1``, ..., ``1.0``: at least one decimal, at most six, no trailing zeros."""
    text = f"{alpha:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@register("wise_ft")
class WiseFT(ImageClassifier):
    """FT whose final weights are interpolated towards the zero-shot weights."""

    Params = WiseParams
    params: WiseParams
    final_epoch_only: ClassVar[bool] = True  # the earlier epochs are FT, not the interpolated model

    def __init__(self, context: TrialContext, params: WiseParams) -> None:
        super().__init__(context, params)
        # Plain dicts, not buffers: kept out of state_dict(), so out of trainable_state().
        self._zero_shot = {n: p.detach().clone() for n, p in self._trained()}
        self._fine_tuned: dict[str, torch.Tensor] | None = None
        self._curve: list[dict[str, float]] = []

    def _trained(self) -> list[tuple[str, torch.nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def _snapshot_fine_tuned(self) -> dict[str, torch.Tensor]:
        if self._fine_tuned is None:
            self._fine_tuned = {n: p.detach().clone() for n, p in self._trained()}
        return self._fine_tuned

    @torch.no_grad()
    def interpolate(self, alpha: float) -> None:
        """Set every trained tensor to ``(1 - alpha) * zero-shot + alpha * fine-tuned`` (exact
        at both ends). The fine-tuned weights are the current ones on the first call."""
        fine_tuned = self._snapshot_fine_tuned()
        for name, parameter in self._trained():
            zs, ft = self._zero_shot[name].to(parameter), fine_tuned[name].to(parameter)
            parameter.copy_(zs.mul(1 - alpha).add_(ft, alpha=alpha))

    def after_training(self) -> None:
        self.interpolate(self.params.alpha)

    def curve_alphas(self) -> list[float]:
        """The curve's grid 0, step, ..., 1, plus the final alpha when it is off the grid."""
        steps = round(1 / self.params.curve_step)
        alphas = [round(k / steps, 6) for k in range(steps + 1)]
        if all(abs(a - self.params.alpha) > 1e-9 for a in alphas):
            alphas = sorted([*alphas, self.params.alpha])
        return alphas

    def posthoc_metrics(self, evaluate: Evaluator) -> dict[str, float]:
        metrics: dict[str, float] = {}
        self._curve = []
        try:
            for alpha in self.curve_alphas():
                self.interpolate(alpha)
                result = evaluate(self)
                metrics.update({f"wise/{format_alpha(alpha)}/{k}": v for k, v in result.items()})
                self._curve.append(
                    {
                        "alpha": alpha,
                        **{c: result.get(c.replace("_", "/", 1), math.nan) for c in CURVE_COLUMNS[1:]},
                    }
                )
        finally:
            self.interpolate(self.params.alpha)
        # The paper chooses alpha on held-out ID data: the curve's best val/acc (larger alpha on ties).
        scored = [(r["val_acc"], r["alpha"]) for r in self._curve if not math.isnan(r["val_acc"])]
        if scored:
            metrics["wise/alpha_val"] = max(scored)[1]
        return metrics

    def artifacts(self) -> dict[str, str]:
        if not self._curve:
            return {}
        csv = [",".join(CURVE_COLUMNS)]
        csv += [",".join([format_alpha(r["alpha"]), *(f"{r[c]:.6g}" for c in CURVE_COLUMNS[1:])]) for r in self._curve]
        md = [
            f"WiSE-FT curve (final model: alpha = {format_alpha(self.params.alpha)})",
            "",
            "| alpha | val acc | ID acc | OOD avg acc | ID ECE | ID NLL | OOD avg ECE |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        md += [
            "| " + " | ".join([format_alpha(r["alpha"]), *(f"{r[c]:.4f}" for c in CURVE_COLUMNS[1:])]) + " |"
            for r in self._curve
        ]
        return {"wise_curve.csv": "\n".join(csv) + "\n", "wise_curve.md": "\n".join(md) + "\n"}
