"""WiSE's weight interpolation after training, shared by every interpolable method (issue 19).

Wortsman et al. (WiSE-FT, CVPR 2022) mix the trained weights with the zero-shot ones,

    theta_alpha = (1 - alpha) * theta_zs + alpha * theta,

tensor by tensor over the method's weights in the zero-shot space (``Method.zero_shot_weights``:
the parameters that train, or LoRA / LoRSU's merged weights), so alpha = 0 is the zero-shot model
and alpha = 1 the trained one. :class:`WeightInterpolation` holds theta_zs, snapshotted when the
method is constructed (before ``prepare``, so LP-FT's theta_zs keeps the zero-shot head) and never
part of a checkpoint: a resumed trial rebuilds it the same way. :func:`wise_curve` evaluates a list
of alphas as ``wise/<alpha>/<metric>`` plus ``wise/alpha_val`` (best ``val/acc``, the larger alpha
on ties, which is how the paper chooses alpha) and leaves the model at the trial's own alpha
(``Method.wise_alpha``: 1, the trained weights, except for wise_ft); :func:`curve_artifacts` writes
the curve as ``wise_curve.csv`` / ``wise_curve.md``. :func:`wise_plan` decides which curve a
trial evaluates (``posthoc.wise``, else the method's own) and takes the snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from trainables.config import WiseConfig
from trainables.errors import InputError

if TYPE_CHECKING:  # the methods import this module; only type hints need theirs
    from trainables.methods.base import Method

CURVE_COLUMNS = ("alpha", "val_acc", "id_acc", "ood_avg_acc", "id_ece", "id_nll", "ood_avg_ece")
CurveRow = dict[str, float]


def format_alpha(alpha: float) -> str:
    """``0.0``, ``0.1``, ..., ``1.0``: at least one decimal, at most six, no trailing zeros."""
    text = f"{alpha:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


class WeightInterpolation:
    """theta_zs of one method, and the interpolation between it and the trained weights.

    A plain object, not a module: its tensors stay out of ``state_dict``, hence out of checkpoints.
    """

    def __init__(self, method: Method) -> None:
        self.zero_shot = {n: t.detach().clone() for n, t in method.zero_shot_weights().items()}
        self.trained: dict[str, torch.Tensor] | None = None

    def _targets(self, method: Method) -> dict[str, torch.Tensor]:
        targets = method.zero_shot_weights()
        if set(targets) != set(self.zero_shot):
            raise RuntimeError(f"{method.name}: its zero-shot-space weights changed names since construction")
        for name, tensor in targets.items():
            # A computed tensor (an unmerged LoRA weight) would take the copy and drop it silently.
            if not isinstance(tensor, torch.nn.Parameter):
                raise RuntimeError(f"{method.name}: {name} is not a live parameter; merge (after_training) first")
        return targets

    @torch.no_grad()
    def apply(self, method: Method, alpha: float) -> None:
        """Set every weight to ``(1 - alpha) * zero-shot + alpha * trained``; exact copies at 0 and
        1. The trained weights are the current ones at the first call."""
        targets = self._targets(method)
        if self.trained is None:
            self.trained = {n: t.detach().clone() for n, t in targets.items()}
        for name, target in targets.items():
            zs, trained = self.zero_shot[name].to(target), self.trained[name].to(target)
            if alpha == 0 or alpha == 1:
                target.copy_(trained if alpha == 1 else zs)
            else:
                target.copy_(zs.mul(1 - alpha).add_(trained, alpha=alpha))


def wise_curve(
    method: Method,
    interpolation: WeightInterpolation,
    alphas: list[float],
    evaluate: Callable[[Method], dict[str, float]],
    final_alpha: float,
) -> tuple[dict[str, float], list[CurveRow]]:
    """Evaluate the model at each alpha; returns ``wise/<alpha>/<metric>`` with ``wise/alpha_val``,
    and the curve's rows. The model is left at ``final_alpha``, whatever happens."""
    metrics: dict[str, float] = {}
    rows: list[CurveRow] = []
    try:
        for alpha in alphas:
            interpolation.apply(method, alpha)
            result = evaluate(method)
            metrics.update({f"wise/{format_alpha(alpha)}/{k}": v for k, v in result.items()})
            columns = {c: result.get(c.replace("_", "/", 1), math.nan) for c in CURVE_COLUMNS[1:]}
            rows.append({"alpha": alpha, **columns})
    finally:
        interpolation.apply(method, final_alpha)
    scored = [(r["val_acc"], r["alpha"]) for r in rows if not math.isnan(r["val_acc"])]
    if scored:
        metrics["wise/alpha_val"] = max(scored)[1]
    return metrics, rows


def curve_artifacts(rows: list[CurveRow], method: str, final_alpha: float) -> dict[str, str]:
    """``wise_curve.csv`` and ``wise_curve.md`` of a curve's rows; nothing for an empty curve."""
    if not rows:
        return {}
    csv = [",".join(CURVE_COLUMNS)]
    csv += [",".join([format_alpha(r["alpha"]), *(f"{r[c]:.6g}" for c in CURVE_COLUMNS[1:])]) for r in rows]
    md = [
        f"WiSE curve of {method} (the trial's model: alpha = {format_alpha(final_alpha)})",
        "",
        "| alpha | val acc | ID acc | OOD avg acc | ID ECE | ID NLL | OOD avg ECE |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    md += [
        "| " + " | ".join([format_alpha(r["alpha"]), *(f"{r[c]:.4f}" for c in CURVE_COLUMNS[1:])]) + " |" for r in rows
    ]
    return {"wise_curve.csv": "\n".join(csv) + "\n", "wise_curve.md": "\n".join(md) + "\n"}


@dataclass(frozen=True)
class WisePlan:
    """The WiSE curve a trial evaluates after its last epoch: its alphas and test domains (None:
    every test domain; the validation splits are always evaluated, alpha is chosen on them)."""

    alphas: list[float]
    domains: list[str] | None


def wise_plan(method: Method, wise: WiseConfig | None, test_domains: Sequence[str]) -> WisePlan | None:
    """The trial's curve: ``posthoc.wise``, else the method's own (wise_ft's); None without one.
    Snapshots theta_zs now, so call it before ``prepare`` or a checkpoint changes the weights."""
    if wise is not None and not method.Params.interpolable:
        raise InputError("posthoc.wise", f"method {method.name!r} has no weights in the zero-shot model's space")
    unknown = sorted(set(wise.domains or []) - set(test_domains)) if wise is not None else []
    if unknown:
        raise InputError("posthoc.wise.domains", f"{unknown} are not test domains of the trial ({list(test_domains)})")
    alphas = wise.alphas if wise is not None else method.wise_curve_alphas()
    if not alphas:
        return None
    if method.interpolation is None:
        method.interpolation = WeightInterpolation(method)
    return WisePlan(list(alphas), wise.domains if wise is not None else None)
