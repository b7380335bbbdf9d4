"""Reference rows of an ablation table: the methods of ``reference: [...]``, labelled, above the ablation.

Papers lay an ablation out this way: the zero-shot and FT rows first, then one row per value of the
ablated knob, each cell read against a reference (``--delta reference=ft``). A reference row
aggregates its method's trials over seeds like any row; it does not vary with the column
parameters, so a pivoted table repeats it under every column group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sweeper.spec.references import REFERENCE
from sweeper.tables.ablation import ablation_table
from trainables.errors import InputError

LABEL = "{} (reference)"


def reference_mask(df: pd.DataFrame) -> pd.Series:
    """True for the rows of reference trials."""
    if REFERENCE not in df.columns:
        return pd.Series(False, index=df.index)
    return df[REFERENCE].notna() & (df[REFERENCE].astype("string") != "")


def ablation_with_references(
    df: pd.DataFrame,
    rows: list[str],
    metrics: list[str],
    modes: dict[str, str] | None = None,
    columns: list[str] | None = None,
    delta: Mapping[str, Any] | None = None,
    where: Mapping[str, str] | None = None,
    order: Sequence[str] = (),
) -> pd.DataFrame:
    """:func:`sweeper.tables.ablation.ablation_table` of the swept trials, with one labelled row per
    reference method on top (in ``order``, then by name). ``delta={"reference": name}`` makes every
    other row's delta its mean minus that reference's; other ``delta`` keys work as in
    ``ablation_table``."""
    columns = list(columns or [])
    delta = dict(delta or {})
    against = delta.pop(REFERENCE, None)
    where_delta = (where or {}).get("delta", "delta")
    mask = reference_mask(df)
    if against is not None and delta:
        raise InputError(where_delta, "give either reference=NAME or row values, not both")
    if not mask.any():
        if against is not None:
            raise InputError(where_delta, "this sweep ran no reference methods (reference: [...] in the sweep file)")
        return ablation_table(df, rows, metrics, modes, columns=columns, delta=delta or None, where=where)
    swept, references = _part(df, ~mask), _part(df, mask)
    table = ablation_table(swept, rows, metrics, modes, columns=columns, delta=delta or None, where=where)
    attrs = dict(table.attrs)
    found = set(references[REFERENCE].astype(str))
    names = [n for n in order if n in found] + sorted(found - set(order))
    if against is not None and str(against) not in names:
        raise InputError(where_delta, f"no reference row {against!r}; references: {', '.join(names)}")
    per_reference = ablation_table(references, [REFERENCE], metrics, modes, where=where)
    per_reference = per_reference.set_index(REFERENCE).loc[names].reset_index()
    top, table = _shaped_like(table, per_reference, columns, metrics)
    combined = pd.concat([top, table], ignore_index=True)
    if against is not None:
        _add_reference_delta(combined, attrs["rows"][0], columns, metrics, LABEL.format(against))
    combined.attrs = {**attrs, "references": [LABEL.format(n) for n in names]}
    return combined


def _part(df: pd.DataFrame, keep: pd.Series) -> pd.DataFrame:
    part = df[keep].reset_index(drop=True)
    part.attrs = dict(df.attrs)
    return part


def _shaped_like(
    table: pd.DataFrame, per_reference: pd.DataFrame, columns: list[str], metrics: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference rows in the ablation table's columns (the label in its first row column), and
    the table itself, with per-metric counts in both when either needs them."""
    label_columns = list(table.attrs["rows"])
    top = pd.DataFrame({name: pd.Series([None] * len(per_reference), dtype="object") for name in label_columns})
    top[label_columns[0]] = [LABEL.format(n) for n in per_reference[REFERENCE]]
    for m in metrics:
        for stat in ("mean", "std", "ci"):
            top[f"{m} {stat}"] = per_reference[f"{m} {stat}"].to_numpy()
    if "n" in table.columns and "n" in per_reference.columns:
        top["n"] = per_reference["n"].to_numpy()
    else:  # some cells lack a metric: every cell keeps its own count
        table = table.copy()
        for m in metrics:
            if "n" in table.columns:
                table[f"{m} n"] = table["n"]
            source = per_reference["n"] if "n" in per_reference.columns else per_reference[f"{m} n"]
            top[f"{m} n"] = source.to_numpy()
        table = table.drop(columns=["n"], errors="ignore")
    if columns:  # the same reference cells under every column group
        top = top.merge(table[columns].drop_duplicates().reset_index(drop=True), how="cross")
    table = table.astype({name: "object" for name in label_columns})
    return top.reindex(columns=table.columns), table


def _add_reference_delta(
    table: pd.DataFrame, label_column: str, columns: list[str], metrics: list[str], label: str
) -> None:
    """Each row's mean minus the reference row's in the same column group; NaN on that row itself."""
    is_reference = table[label_column] == label
    for m in metrics:
        deltas = []
        for i in range(len(table)):
            same_group = is_reference
            for c in columns:
                same_group = same_group & (table[c] == table[c].iloc[i])
            ref_means = table.loc[same_group, f"{m} mean"]
            own = bool(is_reference.iloc[i])
            deltas.append(math.nan if own or ref_means.empty else table[f"{m} mean"].iloc[i] - ref_means.iloc[0])
        table[f"{m} delta"] = pd.Series(deltas, index=table.index, dtype="float64")
