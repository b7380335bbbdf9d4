"""Ready-made paper layouts on top of :func:`sweeper.tables.ablation.ablation_table`.

- ``domains``: rows (default: method) x ID acc, each ``ood/<domain>/acc``, OOD avg, ID ECE — the
  shape of Lipsum-FT's DomainNet table. Domains are sorted by name unless ``domains`` orders them.
- ``compat``: rows x v1, v2, HM from ``compat/v1/acc``, ``compat/v2/acc``, ``compat/hmean`` (HM is
  the mean over seeds of each trial's harmonic mean, as logged, not the HM of the two means).
- ``wise``: the WiSE-FT curve: one row per alpha x ID acc and OOD avg acc, read from the
  ``wise/<alpha>/id/acc`` and ``wise/<alpha>/ood/avg_acc`` columns (mean over seeds); ``columns``
  splits the curve by a parameter (one column group per value). Trials without wise metrics are left out.

Each returns the same long numeric table as ``ablation_table`` (with display ``names``), so every
renderer in :mod:`sweeper.tables.formats` works on it. A frame lacking a layout's metrics is an
``InputError`` naming ``where["layout"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sweeper.tables.ablation import _available, ablation_table, check_columns
from trainables.errors import InputError

LAYOUTS = ("ablation", "domains", "compat", "wise")
COMPAT = {"compat/v1/acc": "v1", "compat/v2/acc": "v2", "compat/hmean": "HM"}
_DOMAIN = re.compile(r"^ood/(.+)/acc$")
_WISE = re.compile(r"^wise/(\d+(?:\.\d+)?)/id/acc$")
WISE_ALPHA = "alpha"  # the row key of the wise layout


def _where(where: Mapping[str, str] | None, key: str) -> str:
    return (where or {}).get(key, key)


def ood_domains(df: pd.DataFrame) -> list[str]:
    """The OOD domains with an accuracy column (``ood/<domain>/acc``), sorted."""
    return sorted(m.group(1) for m in map(_DOMAIN.match, _available(df)[1]) if m)


def domains_table(
    df: pd.DataFrame,
    rows: Sequence[str] = ("method",),
    *,
    domains: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    delta: Mapping[str, Any] | None = None,
    modes: dict[str, str] | None = None,
    where: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """rows x (ID acc, acc on each OOD domain, OOD avg acc, ID ECE); the last two when logged."""
    known = set(_available(df)[1])
    found = ood_domains(df)
    chosen = list(domains) if domains is not None else found
    missing = [d for d in chosen if d not in found]
    if "id/acc" not in known or not chosen or missing:
        lack = f"OOD domain(s) {', '.join(missing)}" if missing else "id/acc and ood/<domain>/acc metrics"
        raise InputError(
            _where(where, "layout"), f"the domains layout needs {lack}; domains logged: {', '.join(found) or '(none)'}"
        )
    metrics = ["id/acc", *(f"ood/{d}/acc" for d in chosen)]
    metrics += [m for m in ("ood/avg_acc", "id/ece") if m in known]
    names = {"id/acc": "ID", **{f"ood/{d}/acc": d for d in chosen}, "ood/avg_acc": "OOD avg", "id/ece": "ID ECE"}
    return ablation_table(
        df, list(rows), metrics, modes, columns=list(columns or []), delta=delta, names=names, where=where
    )


def compat_table(
    df: pd.DataFrame,
    rows: Sequence[str] = ("method",),
    *,
    columns: Sequence[str] | None = None,
    delta: Mapping[str, Any] | None = None,
    modes: dict[str, str] | None = None,
    where: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """rows x (v1, v2, HM): accuracy of the trained and the upgraded model, and their harmonic mean."""
    known = set(_available(df)[1])
    missing = [m for m in COMPAT if m not in known]
    if missing:
        raise InputError(
            _where(where, "layout"),
            f"the compat layout needs {', '.join(COMPAT)}; "
            f"missing: {', '.join(missing)} (only prompt-learning "
            "methods with an upgrade model log them)",
        )
    return ablation_table(
        df, list(rows), list(COMPAT), modes, columns=list(columns or []), delta=delta, names=COMPAT, where=where
    )


def wise_alphas(df: pd.DataFrame) -> list[str]:
    """The alphas with a ``wise/<alpha>/id/acc`` column, as spelled there, in increasing order."""
    return sorted((m.group(1) for m in map(_WISE.match, _available(df)[1]) if m), key=float)


def wise_table(
    df: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    delta: Mapping[str, Any] | None = None,
    where: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """alpha x (ID acc, OOD avg acc) of the WiSE-FT interpolation, per value of ``columns``."""
    columns = list(columns or [])
    alphas = wise_alphas(df)
    if not alphas:
        raise InputError(
            _where(where, "layout"),
            "the wise layout needs wise/<alpha>/id/acc metrics (logged by the wise_ft method); none in this sweep",
        )
    if WISE_ALPHA in columns:
        raise InputError(_where(where, "columns"), f"{WISE_ALPHA!r} is the wise layout's row key")
    check_columns(df, [], [f"wise/{alphas[0]}/id/acc"], columns=columns, where_columns=_where(where, "columns"))
    metrics = ["id/acc"] + (["ood/avg_acc"] if any(f"wise/{a}/ood/avg_acc" in df.columns for a in alphas) else [])
    parts = []
    for alpha in alphas:
        part = df[columns].copy()
        part[WISE_ALPHA] = float(alpha)
        for m in metrics:
            name = f"wise/{alpha}/{m}"
            part[m] = df[name].astype("float64") if name in df.columns else float("nan")
        parts.append(part)
    long = pd.concat(parts, ignore_index=True).dropna(subset=metrics, how="all").reset_index(drop=True)
    long.attrs = {"params": [*columns, WISE_ALPHA], "metrics": metrics}
    table = ablation_table(
        long,
        [WISE_ALPHA],
        metrics,
        columns=columns,
        delta=delta,
        names={"id/acc": "ID acc", "ood/avg_acc": "OOD avg acc"},
        where=where,
    )
    spelled = {float(a): a for a in alphas}  # "0.0" ... "1.0", as in the metric names
    table[WISE_ALPHA] = [spelled[a] for a in table[WISE_ALPHA]]
    return table


def layout_table(
    layout: str,
    df: pd.DataFrame,
    *,
    rows: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    delta: Mapping[str, Any] | None = None,
    modes: dict[str, str] | None = None,
    where: Mapping[str, str] | None = None,
    reference_order: Sequence[str] = (),
) -> pd.DataFrame:
    """One of :data:`LAYOUTS` by name. ``ablation`` needs ``metrics`` and puts the reference trials'
    rows on top (``sweeper.tables.reference_rows``, in ``reference_order``); the others fix their own
    metrics (passing ``metrics`` is an error); ``wise`` fixes its rows (alpha)."""
    if layout not in LAYOUTS:
        raise InputError(_where(where, "layout"), f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout == "ablation":
        from sweeper.tables.reference_rows import ablation_with_references

        return ablation_with_references(
            df,
            list(rows or []),
            list(metrics or []),
            modes,
            columns=list(columns or []),
            delta=delta,
            where=where,
            order=reference_order,
        )
    if metrics is not None:
        raise InputError(_where(where, "metrics"), f"the {layout} layout chooses its own metrics; leave it out")
    if layout == "wise":
        if rows:
            raise InputError(
                _where(where, "rows"), "the wise layout's rows are the alphas; split the curve with columns instead"
            )
        return wise_table(df, columns, delta=delta, where=where)
    build = domains_table if layout == "domains" else compat_table
    return build(
        df, list(rows) if rows is not None else ["method"], columns=columns, delta=delta, modes=modes, where=where
    )
