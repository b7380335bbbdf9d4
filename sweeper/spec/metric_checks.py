"""Metric names a sweep file may use (objective, report columns), and when each exists.

Each check raises :class:`InputError` whose ``where`` is the field path inside the sweep file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from trainables.errors import InputError

if TYPE_CHECKING:
    from sweeper.spec.schema import SweepSpec

_ID_METRICS = {"id/acc", "id/ece", "id/nll"}
_VAL_METRICS = {"val/acc", "val/ece", "val/nll"}
_OOD_AVERAGES = {"ood/avg_acc", "ood/avg_ece"}
_OODVAL_AVERAGES = {"oodval/avg_acc", "oodval/avg_ece"}
_ZS_METRIC = re.compile(r"^zs/[a-z_]+/acc$")
# Method-specific families: parameter counts (every method), model-update compatibility (prompt
# methods with upgrade_model), the training loss terms, and the WiSE-FT curve.
_EXTRA_METRICS = {
    "params/trainable",
    "params/trainable_fraction",
    "params/visual_fraction",
    "compat/v1/acc",
    "compat/v2/acc",
    "compat/hmean",
    "compat/v1/zs_acc",
    "compat/v2/zs_acc",
    "compat/v2/ood_avg_acc",
    "compat/v2/zs_ood_avg_acc",
    "lp/train_acc",
    "lp/val_acc",
    "lp/C",
    "wise/alpha_val",
}
_TRAIN_METRIC = re.compile(r"^train/[a-z_]+$")
_WISE_METRIC = re.compile(r"^wise/(0(\.\d+)?|1(\.0+)?)/(.+)$")
FINAL_ONLY = ("compat/", "wise/", "last/", "best_epoch")  # exist once, after the last epoch
# Metrics measured on test data. Selecting on one (as objective) is oracle selection: it needs
# ``objective.oracle: true``. A wise/<alpha>/ metric is test or validation by what follows alpha.
TEST_PREFIXES = ("id/", "ood/", "zs/", "compat/")


def base_metric(metric: str) -> str:
    """The measured metric under ``last/`` and ``wise/<alpha>/`` (``last/wise/0.5/id/acc`` -> ``id/acc``)."""
    metric = metric.removeprefix("last/")
    wise = _WISE_METRIC.match(metric)
    return base_metric(wise.group(4)) if wise else metric


def is_test_metric(metric: str) -> bool:
    """Whether ``metric`` is measured on test data (``id/*``, ``ood/*``, ``zs/*``, ``compat/*``)."""
    return base_metric(metric).startswith(TEST_PREFIXES)


def check_objective(spec: SweepSpec) -> None:
    """The objective is a validation (or training) metric unless the file declares oracle selection."""
    metric = spec.objective.metric
    if is_test_metric(metric) and not spec.objective.oracle:
        hint = ", oodval/avg_acc (with data.ood_val)" if not spec.data.ood_val else ", oodval/avg_acc"
        raise InputError(
            "objective",
            (
                f"{metric!r} is a test metric, and selecting on test data is oracle selection; select on "
                f"validation (val/acc{hint}), or write objective: {{metric: {metric}, oracle: true}}"
            ),
        )


def check_eval_every(spec: SweepSpec) -> None:
    """Tune reads the objective at every epoch, and with ``eval_every`` > 1 only ``id/`` and
    ``train/`` metrics exist at every epoch; final-only metrics exist at no earlier epoch, which
    ASHA's rungs need."""
    if spec.objective.metric.startswith(FINAL_ONLY) and spec.scheduler.kind == "asha":
        raise InputError(
            "scheduler",
            (
                f"asha needs the objective at every epoch, and {spec.objective.metric!r} is computed once, "
                "after the last one; use fifo, or a val/ or oodval/ objective"
            ),
        )
    if spec.objective.metric.startswith(("id/", "train/", "val/", "oodval/", *FINAL_ONLY)):
        return
    sparse = spec.train.eval_every != 1 or spec.fixed.get("eval_every", 1) != 1 or "eval_every" in spec.search
    if sparse:
        raise InputError(
            "train.eval_every",
            (
                f"must be 1 with objective {spec.objective.metric!r}: the searcher reads the objective at every "
                "epoch, and between evaluations only id/, val/, oodval/ and train/ metrics exist"
            ),
        )


def check_retention(spec: SweepSpec) -> None:
    """With ``data.retention: false`` no trial computes ``zs/<task>/acc``; nothing may ask for it."""
    if spec.data.retention:
        return
    named = [("objective.metric", spec.objective.metric)]
    named += [(f"report.metrics[{i}]", metric) for i, metric in enumerate(spec.report.metrics)]
    for where, metric in named:
        if base_metric(metric).startswith("zs/"):
            raise InputError(
                where, f"{metric.removeprefix('last/')!r} is a zero-shot retention metric, and data.retention is false"
            )


def listing(names: Any) -> str:
    """Comma-separated names, or "none"."""
    return ", ".join(names) or "none"


def check_metric(metric: str, ood: list[str], where: str, ood_val: list[str] | None = None) -> None:
    """A known metric name, whose ood/ (oodval/) domain, if any, is one of the sweep's OOD
    (held-out OOD validation) domains."""
    ood_val = ood_val or []
    if (
        metric in _ID_METRICS
        or metric in _VAL_METRICS
        or metric in _EXTRA_METRICS
        or metric == "best_epoch"
        or _ZS_METRIC.match(metric)
        or _TRAIN_METRIC.match(metric)
    ):
        return
    if metric.startswith("last/") and metric != "last/":
        check_metric(metric.removeprefix("last/"), ood, where, ood_val)
        return
    wise = _WISE_METRIC.match(metric)
    if wise:
        check_metric(wise.group(4), ood, where, ood_val)
        return
    if metric in _OODVAL_AVERAGES:
        if not ood_val:
            raise InputError(where, f"{metric} needs at least one data.ood_val domain; use val/acc instead")
        return
    if metric in _OOD_AVERAGES:
        if not ood:
            raise InputError(where, f"{metric} needs at least one data.ood domain; use an id/ metric instead")
        return
    parts = metric.split("/")
    if len(parts) == 3 and parts[0] in ("ood", "oodval") and parts[2] in ("acc", "ece", "nll"):
        domains, field = (ood, "data.ood") if parts[0] == "ood" else (ood_val, "data.ood_val")
        if parts[1] not in domains:
            raise InputError(
                where, f"{metric!r} names domain {parts[1]!r}, which is not in {field} ({listing(domains)})"
            )
        return
    raise InputError(
        where,
        f"unknown metric {metric!r}; known: {', '.join(sorted(_VAL_METRICS | _ID_METRICS))}"
        + (f", {', '.join(sorted(_OOD_AVERAGES))}, ood/<domain>/acc|ece|nll" if ood else "")
        + (f", {', '.join(sorted(_OODVAL_AVERAGES))}, oodval/<domain>/acc|ece|nll" if ood_val else "")
        + ", zs/<task>/acc, params/trainable[_fraction], compat/v1/acc|v2/acc|hmean, "
        "wise/<alpha>/<metric>, train/<loss term>, last/<metric>, best_epoch",
    )
