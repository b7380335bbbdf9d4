"""Ablation tables: mean, std, 95% CI and n over seeds per configuration.

``ablation_table`` returns a plain numeric DataFrame in long form: the row parameters, then the
column parameters (``columns=``, pivoted only when displayed), then ``"<metric> mean"``,
``"<metric> std"``, ``"<metric> ci"`` (and ``"<metric> delta"`` with ``delta=``) per metric, then
``"n"``. :func:`sweeper.tables.display.grid` lays it out for display; the renderers in
:mod:`sweeper.tables.formats` (Markdown, LaTeX, HTML, CSV, rich) turn the grid into text.
``table.attrs`` carries ``rows``, ``columns``, ``metrics``, ``modes`` and ``names``.

Statistical decisions:
- std uses ddof=1; with one seed it is NaN (unknown, not zero) and the cell shows the mean alone.
- ci is the half-width of a two-sided 95% Student-t interval, ``t_{0.975, n-1} * std / sqrt(n)``;
  t comes from :data:`T_975` (df 1..30, four decimals), and 1.96 (the normal quantile) beyond df 30,
  which understates the interval by at most 3% (df 31) and by under 1% past df 100.
- Each metric has a direction (:func:`default_mode`, overridable with ``modes``), which the
  display uses to mark the best means.
- Deltas (``delta={"method": "ft"}``) are each cell's mean minus the mean of the reference row:
  the row with those values that agrees on every other row and column parameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from trainables.errors import InputError

ALL_ROW = "config"  # the one label column when no row parameters are given
_NOT_ROWS = {"sweep", "run_id", "trial_id", "status", "config_hash", "duration_s", "reference"}

# Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30 (standard table values).
T_975 = (
    12.7062,
    4.3027,
    3.1824,
    2.7764,
    2.5706,
    2.4469,
    2.3646,
    2.3060,
    2.2622,
    2.2281,
    2.2010,
    2.1788,
    2.1604,
    2.1448,
    2.1314,
    2.1199,
    2.1098,
    2.1009,
    2.0930,
    2.0860,
    2.0796,
    2.0739,
    2.0687,
    2.0639,
    2.0595,
    2.0555,
    2.0518,
    2.0484,
    2.0452,
    2.0423,
)
Z_975 = 1.96


def t_quantile(df: int) -> float:
    """``t_{0.975, df}`` from :data:`T_975`, 1.96 past df 30; NaN for df < 1."""
    if df < 1:
        return math.nan
    return T_975[df - 1] if df <= len(T_975) else Z_975


def ci_halfwidth(std: float, n: int) -> float:
    """Half-width of the 95% t interval of a mean of ``n`` values with sample std ``std``."""
    if n < 2 or pd.isna(std):
        return math.nan
    return t_quantile(n - 1) * std / math.sqrt(n)


def default_mode(metric: str) -> str:
    """``min`` for calibration errors, likelihoods, losses, forgetting (``session/<k>/forgetting``,
    ``continual/forgetting``) and parameter counts (fewer trained parameters is the cheaper
    method), ``max`` for everything else."""
    last = metric.rsplit("/", 1)[-1]
    # avg_ece and avg_nll are averages of lower-is-better numbers, so lower is better too.
    calibration = last in ("ece", "nll") or last.endswith(("_ece", "_nll"))
    # train/<term> are loss terms (ce, reg, kl, ...); train/lr is the one that is not.
    base = metric.removeprefix("last/")
    loss = last.endswith("loss") or (base.startswith("train/") and last != "lr")
    lower = calibration or loss or last == "forgetting" or base.startswith("params/")
    return "min" if lower else "max"


def _available(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Row-parameter and metric columns: from ``results.load``'s attrs, else guessed."""
    metrics = df.attrs.get("metrics") or [
        c for c in df.columns if "/" in str(c) and pd.api.types.is_numeric_dtype(df[c])
    ]
    params = df.attrs.get("params") or [c for c in df.columns if c not in metrics and c not in _NOT_ROWS]
    return list(params), list(metrics)


def check_columns(
    df: pd.DataFrame,
    rows: list[str],
    metrics: list[str],
    where_rows: str = "rows",
    where_metrics: str = "metrics",
    columns: list[str] | None = None,
    where_columns: str = "columns",
) -> None:
    """Raise ``InputError`` naming ``where_*`` for row, column or metric names the frame lacks."""
    params, known = _available(df)
    for names, where, what in ((rows, where_rows, "row"), (columns or [], where_columns, "column")):
        for name in names:
            if name not in df.columns or name in known:
                raise InputError(
                    where, f"unknown {what} parameter {name!r}; available: {', '.join(params) or '(none)'}"
                )
    for name in set(rows) & set(columns or []):
        raise InputError(where_columns, f"{name!r} is a row parameter already; a key is either a row or a column")
    if not metrics:
        raise InputError(where_metrics, f"no metrics given; available: {', '.join(known) or '(none)'}")
    for name in metrics:
        if name not in known or name not in df.columns or not pd.api.types.is_numeric_dtype(df[name]):
            raise InputError(where_metrics, f"unknown metric {name!r}; available: {', '.join(known) or '(none)'}")


def _where(where: Mapping[str, str] | None, key: str) -> str:
    return (where or {}).get(key, key)


def ablation_table(
    df: pd.DataFrame,
    rows: list[str],
    metrics: list[str],
    modes: dict[str, str] | None = None,
    columns: list[str] | None = None,
    delta: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
    where: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Mean, std (ddof=1), 95% CI half-width and n of each metric per configuration.

    One row per configuration of ``rows`` + ``columns`` (sorted; a trial missing a parameter forms
    its own group, sorted last). ``modes`` maps a metric to ``"max"``/``"min"`` (default
    :func:`default_mode`); ``delta`` adds ``"<metric> delta"`` columns against a reference row
    (see the module notes); ``names`` are display headers for metrics. ``where`` renames the
    fields named in errors (``rows``, ``columns``, ``metrics``, ``delta``, ``modes``), e.g. to CLI flags.
    """
    columns = list(columns or [])
    check_columns(df, rows, metrics, _where(where, "rows"), _where(where, "metrics"), columns, _where(where, "columns"))
    chosen = {m: (modes or {}).get(m, default_mode(m)) for m in metrics}
    for metric, mode in chosen.items():
        if mode not in ("max", "min"):
            raise InputError(_where(where, "modes"), f"mode of {metric!r} must be 'max' or 'min', not {mode!r}")
    keys = [*rows, *columns]
    if keys:
        stats = df.groupby(keys, dropna=False, sort=True)[metrics].agg(["mean", "std", "count"]).reset_index()
        stats.columns = [a if not b else f"{a} {b}" for a, b in stats.columns]
    else:
        stats = pd.DataFrame({ALL_ROW: ["all"]})
        for m in metrics:
            stats[f"{m} mean"], stats[f"{m} std"], stats[f"{m} count"] = df[m].mean(), df[m].std(), df[m].count()
    if not rows and ALL_ROW not in stats.columns:  # one row per column group: a constant label
        stats.insert(0, ALL_ROW, "all")
    label = [*(rows or [ALL_ROW]), *columns]
    counts = stats[[f"{m} count" for m in metrics]].astype("int64")
    table = stats[label].copy()
    for m in metrics:
        table[f"{m} mean"] = stats[f"{m} mean"].astype("float64")
        table[f"{m} std"] = stats[f"{m} std"].astype("float64")
        table[f"{m} ci"] = [
            ci_halfwidth(s, int(n)) for s, n in zip(table[f"{m} std"], counts[f"{m} count"], strict=True)
        ]
        table[f"{m} ci"] = table[f"{m} ci"].astype("float64")
    if delta:
        _add_delta(table, label, metrics, delta, _where(where, "delta"))
    if (counts.nunique(axis=1) <= 1).all():
        table["n"] = counts.iloc[:, 0].to_numpy()
    else:  # some trials lack a metric: keep the count next to each metric instead of one n
        for m in metrics:
            table[f"{m} n"] = counts[f"{m} count"].to_numpy()
    table.attrs = {
        "rows": list(rows or [ALL_ROW]),
        "columns": columns,
        "metrics": list(metrics),
        "modes": chosen,
        "names": {m: (names or {}).get(m, m) for m in metrics},
    }
    return table


def _norm(value: Any) -> tuple:
    """A hashable, type-tolerant key for a parameter value (1 == 1.0; NaN == None)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ("na",)
    if isinstance(value, (bool, str)):
        return ("v", value)
    try:
        return ("v", float(value))
    except (TypeError, ValueError):
        return ("v", str(value))


def matches(value: Any, given: Any) -> bool:
    """Whether a table's parameter ``value`` is what the user wrote as ``given`` (text or value)."""
    if _norm(value) == _norm(given):
        return True
    text = str(given).strip()
    if isinstance(value, bool) or str(value).lower() in ("true", "false"):
        return str(value).lower() == text.lower()
    if _norm(value)[0] == "na":
        return text.lower() in ("", "none", "nan", "null", "-", "–")
    try:
        return float(value) == float(text)
    except (TypeError, ValueError):
        return str(value) == text or fmt_param(value, "") == text


def _add_delta(table: pd.DataFrame, keys: list[str], metrics: list[str], delta: Mapping[str, Any], where: str) -> None:
    chosen: dict[str, tuple] = {}
    for key, given in delta.items():
        if key not in keys:
            raise InputError(
                where, f"{key!r} is not a row or column parameter of this table; parameters: {', '.join(keys)}"
            )
        hits = [v for v in table[key].drop_duplicates() if matches(v, given)]
        if not hits:
            values = ", ".join(fmt_param(v, "–") for v in table[key].drop_duplicates())
            raise InputError(where, f"no row with {key}={given}; values of {key}: {values}")
        chosen[key] = _norm(hits[0])
    index = {tuple(_norm(v) for v in row): i for i, row in enumerate(table[keys].itertuples(index=False))}
    refs = []
    for row in table[keys].itertuples(index=False):
        own = tuple(_norm(v) for v in row)
        ref = tuple(chosen.get(k, own[j]) for j, k in enumerate(keys))
        refs.append(index.get(ref) if ref != own else None)  # the reference row has no delta
    for m in metrics:
        means = table[f"{m} mean"].to_numpy(dtype="float64")
        table[f"{m} delta"] = [math.nan if r is None else means[i] - means[r] for i, r in enumerate(refs)]


def fmt_param(value: Any, dash: str) -> str:
    """A parameter value as a label: ``–`` when missing, ``3e-04`` style floats kept short."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return dash
    return f"{value:g}" if isinstance(value, float) else str(value)
