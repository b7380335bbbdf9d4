"""Metric names a sweep file may use (objective, report columns), and when each exists.

Each check raises :class:`InputError` whose ``where`` is the field path inside the sweep file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from trainables.errors import InputError

if TYPE_CHECKING:
    from sweeper.spec import SweepSpec

_ID_METRICS = {"id/acc", "id/ece", "id/nll"}
_OOD_AVERAGES = {"ood/avg_acc", "ood/avg_ece"}
_ZS_METRIC = re.compile(r"^zs/[a-z_]+/acc$")
# Method-specific families: parameter counts (every method), model-update compatibility (prompt
# methods with upgrade_model), the training loss terms, and the WiSE-FT curve.
_EXTRA_METRICS = {"params/trainable", "params/trainable_fraction", "params/visual_fraction",
                  "compat/v1/acc", "compat/v2/acc", "compat/hmean", "compat/v1/zs_acc", "compat/v2/zs_acc",
                  "compat/v2/ood_avg_acc", "compat/v2/zs_ood_avg_acc", "lp/train_acc"}
_TRAIN_METRIC = re.compile(r"^train/[a-z_]+$")
_WISE_METRIC = re.compile(r"^wise/(0(\.\d+)?|1(\.0+)?)/(.+)$")
FINAL_ONLY = ("compat/", "wise/")  # computed once, after the last epoch (posthoc metrics)


def check_eval_every(spec: SweepSpec) -> None:
    """Tune reads the objective at every epoch, and with ``eval_every`` > 1 only ``id/`` and
    ``train/`` metrics exist at every epoch; final-only metrics exist at no earlier epoch, which
    ASHA's rungs need."""
    if spec.objective.metric.startswith(FINAL_ONLY) and spec.scheduler.kind == "asha":
        raise InputError("scheduler", (
            f"asha needs the objective at every epoch, and {spec.objective.metric!r} is computed once, "
            "after the last one; use fifo, or an id/ or ood/ objective"))
    if spec.objective.metric.startswith(("id/", "train/", *FINAL_ONLY)):
        return
    sparse = spec.train.eval_every != 1 or spec.fixed.get("eval_every", 1) != 1 or "eval_every" in spec.search
    if sparse:
        raise InputError("train.eval_every", (
            f"must be 1 with objective {spec.objective.metric!r}: the searcher reads the objective at every "
            "epoch, and between evaluations only id/ and train/ metrics exist"))


def listing(names: Any) -> str:
    """Comma-separated names, or "none"."""
    return ", ".join(names) or "none"


def check_metric(metric: str, ood: list[str], where: str) -> None:
    """A known metric name, whose ood/ domain (if any) is one of the sweep's OOD domains."""
    if metric in _ID_METRICS or metric in _EXTRA_METRICS or _ZS_METRIC.match(metric) or _TRAIN_METRIC.match(metric):
        return
    wise = _WISE_METRIC.match(metric)
    if wise:
        check_metric(wise.group(4), ood, where)
        return
    if metric in _OOD_AVERAGES:
        if not ood:
            raise InputError(where, f"{metric} needs at least one data.ood domain; use an id/ metric instead")
        return
    parts = metric.split("/")
    if len(parts) == 3 and parts[0] == "ood" and parts[2] in ("acc", "ece", "nll"):
        if parts[1] not in ood:
            raise InputError(where, f"{metric!r} names domain {parts[1]!r}, which is not in data.ood ({listing(ood)})")
        return
    raise InputError(
        where,
        f"unknown metric {metric!r}; known: {', '.join(sorted(_ID_METRICS))}"
        + (f", {', '.join(sorted(_OOD_AVERAGES))}, ood/<domain>/acc|ece|nll" if ood else "")
        + ", zs/<task>/acc, params/trainable[_fraction], compat/v1/acc|v2/acc|hmean, "
        "wise/<alpha>/<metric>, train/<loss term>",
    )
