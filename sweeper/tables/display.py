"""The display grid: an ablation table (:func:`sweeper.tables.ablation.ablation_table`) pivoted
for display, with each column's best and second best means marked, which every renderer in
:mod:`sweeper.tables.formats` but CSV goes through.

Formatting decisions:
- When every cell of a display row has the same number of seeds there is one ``n`` column;
  otherwise every cell reads ``0.712 ± 0.013 (n=2)``.
- Best means per display column are bold and second best underlined, compared at the printed
  precision (so two cells that print alike are marked alike), in each metric's direction
  (:func:`sweeper.tables.ablation.default_mode`, overridable with ``modes``). Ties share the mark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sweeper.tables.ablation import _norm, default_mode, fmt_param
from trainables.errors import InputError


def best_rows(
    table: pd.DataFrame, metrics: list[str] | None = None, modes: dict[str, str] | None = None
) -> dict[str, set[int]]:
    """Per metric, the positions of the rows whose mean is best (all of them on a tie), exactly."""
    metrics = metrics or table.attrs.get("metrics", [])
    chosen = {**table.attrs.get("modes", {}), **(modes or {})}
    return {
        m: {i for i, r in enumerate(ranks(table[f"{m} mean"].tolist(), chosen.get(m, default_mode(m)))) if r == 0}
        for m in metrics
    }


def ranks(means: list[float], mode: str, precision: int | None = None) -> list[int | None]:
    """0 for the best value(s), 1 for the second best distinct value(s), else None.

    With ``precision`` the values are compared as printed with that many decimals.
    """
    shown = [
        math.nan if pd.isna(v) else (float(f"{v:.{precision}f}") if precision is not None else float(v)) for v in means
    ]
    distinct = sorted({v for v in shown if not math.isnan(v)}, reverse=(mode == "max"))
    place = {v: k for k, v in enumerate(distinct[:2])}
    return [place.get(v) for v in shown]


@dataclass
class Cell:
    mean: float
    spread: float  # std or CI half-width; NaN when unknown (n=1)
    n: int
    delta: float  # NaN when none (no reference, or the reference row itself)
    rank: int | None  # 0 best, 1 second best


@dataclass
class Grid:
    """A table laid out for display: label columns, then ``groups`` x ``heads`` value columns."""

    label_names: list[str]
    labels: list[list[Any]]  # raw parameter values, one list per display row
    groups: list[str]  # column-group titles ("key=value, ..."); [""] when not pivoted
    heads: list[str]  # metric display names, the same under every group
    cells: list[list[Cell | None]]  # per row: group-major, one per (group, head); None if no trials
    n: list[int] | None  # one n per row, or None when cells show their own n
    precision: int
    stat: str


def grid(table: pd.DataFrame, stat: str = "std", precision: int = 3) -> Grid:
    """Pivot a table from :func:`ablation_table` for display, ranking each column."""
    if stat not in ("std", "ci"):
        raise InputError("stat", f"must be 'std' or 'ci', not {stat!r}")
    rows, metrics = table.attrs["rows"], table.attrs["metrics"]
    columns, names = table.attrs.get("columns", []), table.attrs.get("names", {})
    modes = table.attrs.get("modes", {})
    row_keys = list(dict.fromkeys(tuple(_norm(v) for v in r) for r in table[rows].itertuples(index=False)))
    labels = {tuple(_norm(v) for v in r): list(r) for r in table[rows].itertuples(index=False)}
    if columns:
        order = table[columns].drop_duplicates().sort_values(columns, na_position="last")
        col_keys = [tuple(_norm(v) for v in r) for r in order.itertuples(index=False)]
        titles = [
            ", ".join(f"{k}={fmt_param(v, '–')}" for k, v in zip(columns, r, strict=True))
            for r in order.itertuples(index=False)
        ]
    else:
        col_keys, titles = [()], [""]
    where = {}
    for position, r in enumerate(table[[*rows, *columns]].itertuples(index=False)):
        key = tuple(_norm(v) for v in r)
        where[(key[: len(rows)], key[len(rows) :])] = position
    has_delta = all(f"{m} delta" in table.columns for m in metrics)
    # Each column taken once: table[name] copies the table's attrs, which per cell took most of
    # the time of a table with thousands of rows.
    series = {name: table[name] for name in table.columns}
    cells: list[list[Cell | None]] = [[] for _ in row_keys]
    for col in col_keys:
        for m in metrics:
            column: list[Cell | None] = []
            means = series[f"{m} mean"]
            for r in row_keys:
                i = where.get((r, col))
                if i is None or pd.isna(means.iloc[i]):
                    column.append(None)
                    continue
                count = int(series["n"].iloc[i] if "n" in series else series[f"{m} n"].iloc[i])
                column.append(
                    Cell(
                        float(means.iloc[i]),
                        float(series[f"{m} {stat}"].iloc[i]),
                        count,
                        float(series[f"{m} delta"].iloc[i]) if has_delta else math.nan,
                        None,
                    )
                )
            marks = ranks([math.nan if c is None else c.mean for c in column], modes.get(m, default_mode(m)), precision)
            for line, cell, mark in zip(cells, column, marks, strict=True):
                if cell is not None:
                    cell.rank = mark
                line.append(cell)
    per_row = [{c.n for c in line if c is not None} for line in cells]
    n = [next(iter(s)) if s else 0 for s in per_row] if all(len(s) <= 1 for s in per_row) else None
    return Grid(
        list(rows), [labels[r] for r in row_keys], titles, [names.get(m, m) for m in metrics], cells, n, precision, stat
    )
