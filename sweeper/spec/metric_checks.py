"""Metric names a sweep file may use (objective, report columns), and when each exists.

Each check raises :class:`InputError` whose ``where`` is the field path inside the sweep file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from trainables import registry
from trainables.errors import InputError

if TYPE_CHECKING:
    from sweeper.spec.schema import SweepSpec

_ID_METRICS = {"id/acc", "id/ece", "id/nll"}
_VAL_METRICS = {"val/acc", "val/ece", "val/nll"}
_OOD_AVERAGES = {"ood/avg_acc", "ood/avg_ece"}
_OODVAL_AVERAGES = {"oodval/avg_acc", "oodval/avg_ece"}
_ZS_METRIC = re.compile(r"^zs/[a-z_]+/acc$")
# Method-specific families: parameter counts (every method), model-update compatibility (prompt
# methods and image adapters with upgrade_model), the training loss terms, and the WiSE-FT curve.
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
    "tpgm/ratio_mean",
    "tpgm/ratio_min",
    "tpgm/val_ce_first",
    "tpgm/val_ce_last",
}
_TRAIN_METRIC = re.compile(r"^train/[a-z_]+$")
# Continual trials (``sessions``, trainables.continual): per-session metrics and the summary.
CONTINUAL_PREFIXES = ("session/", "continual/")
_CONTINUAL_METRIC = re.compile(r"^continual/(avg_acc|forgetting|target_gain|retention_change|sessions)$")
_SESSION_METRIC = re.compile(
    r"^session/[1-9]\d*/(target_acc|target_gain|seen_acc|forgetting|retention_change|acc/[1-9]\d*"
    r"|id/acc|ood/avg_acc|val/acc|oodval/avg_acc|zs/[a-z_]+/acc)$"
)
# Effective robustness: OOD accuracy above the zero-shot line at the trial's ID accuracy, on the
# test domains (needs data.ood) and on the held-out validation domains (needs data.ood_val).
ROBUSTNESS_TEST, ROBUSTNESS_VAL = "robustness/effective", "robustness/effective_val"
ZEROSHOT = "zeroshot/"  # the trial's own zero-shot point: zeroshot/id/acc, zeroshot/ood/avg_acc, ...
# Families only some methods log (their ``Params.logs``); ``wise/`` also comes with posthoc.wise.
METHOD_FAMILIES = ("lp/", "compat/", "wise/", "params/visual_fraction", "tpgm/")
_WISE_METRIC = re.compile(r"^wise/(0(\.\d+)?|1(\.0+)?)/(.+)$")
FINAL_ONLY = (
    "compat/",
    "wise/",
    "last/",
    "best_epoch",
    "tpgm/",
    *CONTINUAL_PREFIXES,
)  # exist once, after the last epoch
# Metrics measured on test data. Selecting on one (as objective) is oracle selection: it needs
# ``objective.oracle: true``. A wise/<alpha>/ metric is test or validation by what follows alpha.
TEST_PREFIXES = ("id/", "ood/", "zs/", "compat/", *CONTINUAL_PREFIXES)


def base_metric(metric: str) -> str:
    """The measured metric under ``last/`` and ``wise/<alpha>/`` (``last/wise/0.5/id/acc`` -> ``id/acc``)."""
    metric = metric.removeprefix("last/")
    wise = _WISE_METRIC.match(metric)
    return base_metric(wise.group(4)) if wise else metric


def is_test_metric(metric: str) -> bool:
    """Whether ``metric`` is measured on test data (``id/*``, ``ood/*``, ``zs/*``, ``compat/*``,
    ``robustness/effective``, and their ``zeroshot/`` values)."""
    measured = base_metric(metric).removeprefix(ZEROSHOT)
    after_session = re.match(r"^session/\d+/(val|oodval)/", measured)
    return (measured.startswith(TEST_PREFIXES) and not after_session) or measured == ROBUSTNESS_TEST


def check_objective(spec: SweepSpec) -> None:
    """Each objective is a validation (or training) metric unless it declares oracle selection, and
    every method of the sweep logs it. Several objectives need a scheduler that ranks on several."""
    for i, objective in enumerate(spec.objectives):
        metric, where = objective.metric, spec.objective_field(i)
        if is_test_metric(metric) and not objective.oracle:
            hint = ", oodval/avg_acc (with data.ood_val)" if not spec.data.ood_val else ", oodval/avg_acc"
            raise InputError(
                where.removesuffix(".metric"),
                (
                    f"{metric!r} is a test metric, and selecting on test data is oracle selection; select on "
                    f"validation (val/acc{hint}), or write {{metric: {metric}, oracle: true}}"
                ),
            )
        check_logged(spec, metric, where)
    if spec.multi_objective and spec.scheduler.kind == "asha":
        names = ", ".join(o.metric for o in spec.objectives)
        raise InputError(
            "scheduler",
            f"asha stops trials by ranking them on one metric, and objective lists {len(spec.objectives)} "
            f"({names}); use scheduler: fifo for a multi-objective search, or a single objective",
        )


def check_logged(spec: SweepSpec, metric: str, where: str) -> None:
    """A method-specific metric (``lp/``, ``compat/``, ``wise/``, ...) as objective must be logged by
    every method the sweep runs: a trial without it could not be ranked."""
    name = metric.removeprefix("last/")
    family = next((f for f in METHOD_FAMILIES if name.startswith(f)), None)
    if family is None:
        return
    wise = spec.posthoc.wise
    for method in spec.methods:
        params = registry.params(method)
        logged = family in params.logs or (family == "wise/" and wise is not None and params.interpolable)
        if family == "compat/" and logged:
            logged = spec.fixed.get("upgrade_model") is not None or "upgrade_model" in spec.search
        if not logged:
            hint = {
                "wise/": "add posthoc: {wise: {alphas: [...]}} for a method whose weights can be interpolated",
                "compat/": "set upgrade_model for a prompt method or an adapter",
            }.get(family, "logged by " + listing(m for m in registry.names() if family in registry.params(m).logs))
            raise InputError(where, f"method {method!r} never logs {metric!r} ({hint})")
    alpha = _WISE_METRIC.match(name)
    if alpha and wise is not None and float(alpha.group(1)) not in wise.alphas:
        raise InputError(where, f"{metric!r}: alpha {alpha.group(1)} is not in posthoc.wise.alphas {wise.alphas}")


def check_eval_every(spec: SweepSpec) -> None:
    """Tune reads the objective at every epoch, and with ``eval_every`` > 1 only ``id/`` and
    ``train/`` metrics exist at every epoch; final-only metrics exist at no earlier epoch, which
    ASHA's rungs need."""
    for objective in spec.objectives:
        metric = objective.metric
        if metric.startswith(FINAL_ONLY) and spec.scheduler.kind == "asha":
            raise InputError(
                "scheduler",
                (
                    f"asha needs the objective at every epoch, and {metric!r} is computed once, "
                    "after the last one; use fifo, or a val/ or oodval/ objective"
                ),
            )
        if metric.startswith(("id/", "train/", "val/", "oodval/", ROBUSTNESS_VAL, *FINAL_ONLY)):
            continue
        sparse = spec.train.eval_every != 1 or spec.fixed.get("eval_every", 1) != 1 or "eval_every" in spec.search
        if sparse:
            raise InputError(
                "train.eval_every",
                (
                    f"must be 1 with objective {metric!r}: the searcher reads the objective at every "
                    "epoch, and between evaluations only id/, val/, oodval/ and train/ metrics exist"
                ),
            )


def check_retention(spec: SweepSpec) -> None:
    """With ``data.retention: false`` no trial computes ``zs/<task>/acc``; nothing may ask for it."""
    if spec.data.retention:
        return
    named = [(spec.objective_field(i), o.metric) for i, o in enumerate(spec.objectives)]
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
        or _CONTINUAL_METRIC.match(metric)
        or _SESSION_METRIC.match(metric)
    ):
        return
    if metric.startswith("last/") and metric != "last/":
        check_metric(metric.removeprefix("last/"), ood, where, ood_val)
        return
    if metric.startswith(ZEROSHOT) and metric.removeprefix(ZEROSHOT).startswith(("id/", "val/", "ood/", "oodval/")):
        check_metric(metric.removeprefix(ZEROSHOT), ood, where, ood_val)
        return
    if metric in (ROBUSTNESS_TEST, ROBUSTNESS_VAL):
        needed, field = (ood, "data.ood") if metric == ROBUSTNESS_TEST else (ood_val, "data.ood_val")
        if not needed:
            raise InputError(where, f"{metric} is measured on the {field} domains, and {field} is empty")
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
        "robustness/effective[_val], zeroshot/<metric>, wise/<alpha>/<metric>, train/<loss term>, last/<metric>, "
        "best_epoch",
    )
