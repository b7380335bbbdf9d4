"""The continual layout: rows (default: method) x sessions, for sweeps whose trials learn in sessions.

A continual trial logs, at the end of each session k = 1..K, ``session/<k>/acc/<j>`` for j <= k
(accuracy on session j's test data after session k), ``session/<k>/target_acc``,
``session/<k>/target_gain`` (target_acc minus the zero-shot model's), ``session/<k>/seen_acc``,
``session/<k>/forgetting`` (from k = 2 on) and ``session/<k>/retention_change`` (with retention
tasks), and after the last session ``continual/avg_acc``, ``continual/forgetting``,
``continual/target_gain``, ``continual/retention_change`` and ``continual/sessions``.

- :func:`sessions_table`: one column per chosen quantity and session (``target gain S1`` ...
  ``forgetting SK``), then the ``continual/*`` summary that was logged (``... (all)``); mean over
  seeds, std, CI and n as in :func:`sweeper.tables.ablation.ablation_table`, whose long table it
  returns, so every renderer of :mod:`sweeper.tables.formats` and the marks of
  :mod:`sweeper.tables.display` apply (each column ranked on its own: forgetting lower-is-better,
  accuracies and gains higher). A session that logged no value of a quantity (forgetting at
  session 1) keeps its column, shown as ``–``. K is the largest k of any ``session/<k>/`` column.
- :func:`accuracy_matrix`: one trial's ``session/<k>/acc/<j>`` as a K x K frame
  (``results.accuracy_matrix``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sweeper.tables.ablation import ablation_table
from trainables.errors import InputError

QUANTITIES = ("target_acc", "target_gain", "seen_acc", "forgetting", "retention_change")
DEFAULT_QUANTITIES = ("target_gain", "forgetting")
LABELS = {
    "target_acc": "target acc",
    "target_gain": "target gain",
    "seen_acc": "seen acc",
    "forgetting": "forgetting",
    "retention_change": "retention change",
    "avg_acc": "avg acc",
}
SUMMARY = ("continual/avg_acc", "continual/forgetting", "continual/target_gain", "continual/retention_change")
_SESSION = re.compile(r"^session/(\d+)/")
_ACC = re.compile(r"^session/(\d+)/acc/(\d+)$")


def _where(where: Mapping[str, str] | None, key: str) -> str:
    return (where or {}).get(key, key)


def _logged(df: pd.DataFrame, name: str) -> bool:
    """Whether ``name`` is a numeric column of ``df`` with at least one value."""
    return name in df.columns and pd.api.types.is_numeric_dtype(df[name]) and bool(df[name].notna().any())


def session_count(df: pd.DataFrame) -> int:
    """K: the largest k of a ``session/<k>/...`` column with a value; 0 when there is none."""
    found = [int(m.group(1)) for m in map(_SESSION.match, map(str, df.columns)) if m and _logged(df, m.string)]
    return max(found, default=0)


def session_metric(k: int, quantity: str) -> str:
    """The metric a trial logs for ``quantity`` after session ``k``: ``session/<k>/<quantity>``."""
    return f"session/{k}/{quantity}"


def _check_quantities(df: pd.DataFrame, quantities: Sequence[str], sessions: int, where: str) -> None:
    if not quantities:
        raise InputError(where, f"no session quantity given; choose from {', '.join(QUANTITIES)}")
    for quantity in quantities:
        if quantity not in QUANTITIES:
            raise InputError(
                where,
                f"unknown session quantity {quantity!r} for --layout sessions; choose from {', '.join(QUANTITIES)}",
            )
        logged = any(_logged(df, session_metric(k, quantity)) for k in range(1, sessions + 1))
        # forgetting starts at session 2: a one-session sweep shows its column empty rather than fail
        if not logged and not (quantity == "forgetting" and sessions == 1):
            what = " (the sweep has no retention tasks?)" if quantity == "retention_change" else ""
            raise InputError(where, f"no trial logged session/<k>/{quantity}{what}")


def sessions_table(
    df: pd.DataFrame,
    rows: Sequence[str] = ("method",),
    quantities: Sequence[str] | None = None,
    *,
    columns: Sequence[str] | None = None,
    delta: Mapping[str, Any] | None = None,
    modes: dict[str, str] | None = None,
    where: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """rows x (each of ``quantities`` at sessions 1..K, then the ``continual/*`` summary logged).

    ``quantities`` are from :data:`QUANTITIES` (default :data:`DEFAULT_QUANTITIES`). Trials that
    logged no session metric (a zero-shot reference, say) are left out. ``columns``, ``delta``,
    ``modes`` and ``where`` are as in :func:`sweeper.tables.ablation.ablation_table`; a frame
    without ``session/`` metrics is an ``InputError`` naming ``where["layout"]``.
    """
    sessions = session_count(df)
    if sessions == 0:
        raise InputError(
            _where(where, "layout"),
            "the sessions layout needs session/<k>/... metrics, which trials of a continual sweep (one with a "
            "top-level sessions: key) log; this sweep's trials logged none: choose another layout",
        )
    quantities = list(quantities) if quantities is not None else list(DEFAULT_QUANTITIES)
    _check_quantities(df, quantities, sessions, _where(where, "metrics"))
    metrics = [session_metric(k, q) for q in quantities for k in range(1, sessions + 1)]
    metrics += [m for m in SUMMARY if _logged(df, m)]
    names = {session_metric(k, q): f"{LABELS[q]} S{k}" for q in quantities for k in range(1, sessions + 1)}
    names |= {m: f"{LABELS[m.split('/', 1)[1]]} (all)" for m in SUMMARY}
    chosen = {m: "min" if m.endswith("/forgetting") else "max" for m in metrics} | (modes or {})
    present = [m for m in metrics if _logged(df, m)]
    if not present:
        raise InputError(_where(where, "metrics"), "no session metric of these quantities was logged")
    session_columns = [c for c in df.columns if _SESSION.match(str(c)) or str(c).startswith("continual/")]
    frame = df[df[session_columns].notna().any(axis=1)].reset_index(drop=True)
    frame.attrs = dict(df.attrs)
    table = ablation_table(
        frame,
        list(rows),
        present,
        {m: chosen[m] for m in present},
        columns=list(columns or []),
        delta=delta,
        names=names,
        where=where,
    )
    return _with_empty_columns(table, metrics, chosen, names)


def _with_empty_columns(
    table: pd.DataFrame, metrics: list[str], modes: dict[str, str], names: Mapping[str, str]
) -> pd.DataFrame:
    """``table`` with NaN columns for the ``metrics`` no trial logged (shown as ``–``), in ``metrics`` order."""
    attrs = dict(table.attrs)
    stats = ["mean", "std", "ci", *(["delta"] if any(c.endswith(" delta") for c in table.columns) else [])]
    per_metric_n = "n" not in table.columns
    for m in metrics:
        if f"{m} mean" not in table.columns:
            for stat in stats:
                table[f"{m} {stat}"] = math.nan
            if per_metric_n:
                table[f"{m} n"] = 0
    labels = [*attrs["rows"], *attrs["columns"]]
    order = [f"{m} {stat}" for m in metrics for stat in [*stats, *(["n"] if per_metric_n else [])]]
    table = table[[*labels, *order, *([] if per_metric_n else ["n"])]].copy()
    table.attrs = {
        **attrs,
        "metrics": list(metrics),
        "modes": {m: modes[m] for m in metrics},
        "names": {m: names[m] for m in metrics},
    }
    return table


def accuracy_matrix(trial: pd.Series | pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """One trial's accuracy matrix: row k (after session k) x column j (session j's test data),
    from its ``session/<k>/acc/<j>`` values; NaN where none was logged (j > k).

    ``trial`` is a row of a ``results.load`` frame (``df.iloc[0]``, a one-row frame or a mapping);
    for the mean over seeds, pass ``df[mask].mean(numeric_only=True)``.
    """
    if isinstance(trial, pd.DataFrame):
        if len(trial) != 1:
            raise InputError(
                "trial",
                f"one trial (one row) is needed, not {len(trial)}; average several with .mean(numeric_only=True)",
            )
        trial = trial.iloc[0]
    cells = {}
    for name, value in trial.items():
        found = _ACC.match(str(name))
        if found and value is not None and not pd.isna(value):
            cells[(int(found.group(1)), int(found.group(2)))] = float(value)
    if not cells:
        raise InputError("trial", "no session/<k>/acc/<j> values: not a trial of a continual sweep")
    size = max(max(k, j) for k, j in cells)
    matrix = pd.DataFrame(
        math.nan,
        index=pd.RangeIndex(1, size + 1, name="after session"),
        columns=pd.RangeIndex(1, size + 1, name="on session"),
        dtype="float64",
    )
    for (k, j), value in cells.items():
        matrix.loc[k, j] = value
    return matrix
