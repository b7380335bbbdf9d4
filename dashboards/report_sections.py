"""The parts of the HTML report that are tables: sections, config labels and ablation tables.

:mod:`dashboards.report` assembles them with the figures into one page.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dashboards.study import CONFIG
from sweeper.tables.ablation import default_mode


@dataclass
class FigureEntry:
    name: str
    title: str
    caption: str
    data_uri: str
    png: str
    pdf: str


@dataclass
class Section:
    id: str
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[dict[str, str]] = field(default_factory=list)
    figures: list[FigureEntry] = field(default_factory=list)


# -- small helpers -------------------------------------------------------------------------------


def file_name(text: str) -> str:
    """A safe file stem: letters, digits, ``._-``; everything else becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "figure"


def _value_text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _mode(metric: str, objective: dict[str, Any]) -> str:
    if objective.get("metric") == metric and objective.get("mode") in ("max", "min"):
        return objective["mode"]
    return default_mode(metric)


def with_config_labels(df: pd.DataFrame, search_keys: list[str]) -> pd.DataFrame:
    """A copy of ``df`` with a ``__config`` column: ``key=value, ...`` over the searched keys."""
    keys = [k for k in search_keys if k in df.columns and k != "seed"]
    out = df.copy()
    out.attrs = dict(df.attrs)
    if not keys:
        fallback = out["method"].map(_value_text) if "method" in out.columns else "config"
        out[CONFIG] = fallback
        return out
    labels = []
    references = out["reference"] if "reference" in out.columns else pd.Series(None, index=out.index)
    # The rows as iterrows() gives them (one array of the keys' common dtype), without a Series per row.
    for row, reference in zip(out[keys].values, references, strict=True):
        parts = [f"{k}={_value_text(v)}" for k, v in zip(keys, row, strict=True) if not pd.isna(v)]
        # a reference trial is its own configuration: its method at its defaults
        labels.append(
            f"{reference} (reference)" if isinstance(reference, str) and reference else ", ".join(parts) or "(defaults)"
        )
    out[CONFIG] = labels
    return out


# -- ablation tables -----------------------------------------------------------------------------


def table_html(table: pd.DataFrame, modes: dict[str, str]) -> str:
    """An ``ablation_table`` as an HTML table: ``mean ± std`` (n), best mean per metric in bold."""
    rows, metrics = table.attrs["rows"], table.attrs["metrics"]
    per_metric_n = "n" not in table.columns
    best: dict[str, set[int]] = {}
    for m in metrics:
        means = [float(v) for v in table[f"{m} mean"]]
        valid = [v for v in means if not math.isnan(v)]
        target = (max(valid) if modes.get(m, "max") == "max" else min(valid)) if valid else None
        best[m] = {i for i, v in enumerate(means) if target is not None and v == target}
    body = []
    series = {name: table[name] for name in table.columns}  # once: table[name] copies the attrs
    for i in range(len(table)):
        line = [html.escape(_value_text(series[r].iloc[i])) for r in rows]
        for m in metrics:
            mean, std = series[f"{m} mean"].iloc[i], series[f"{m} std"].iloc[i]
            if pd.isna(mean):
                text = "–"
            else:
                text = f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"
                if per_metric_n:
                    text += f" (n={int(series[f'{m} n'].iloc[i])})"
            line.append(f"<strong>{text}</strong>" if i in best[m] else text)
        if not per_metric_n:
            line.append(str(int(series["n"].iloc[i])))
        body.append(line)
    header = [html.escape(h) for h in [*rows, *(f"{m} ({modes.get(m, 'max')})" for m in metrics)]]
    if not per_metric_n:
        header.append("n")
    frame = pd.DataFrame(body, columns=header)
    return frame.to_html(index=False, escape=False, border=0, classes="ablation", na_rep="–")


def ablation_section(
    df: pd.DataFrame,
    rows: list[str],
    metrics: list[str],
    search_keys: list[str],
    objective: dict[str, Any],
    references: list[str] | None = None,
) -> Section:
    from sweeper.tables import formats
    from sweeper.tables.reference_rows import ablation_with_references

    section = Section("ablation", "Ablation table")
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        section.notes.append(f"Report metrics with no values in any trial: {', '.join(missing)}.")
    metrics = [m for m in metrics if m in df.columns]
    if not metrics:
        section.notes.append("No report metric was logged; no table.")
        return section
    variants = [(rows, "report rows")]
    searched = [k for k in search_keys if k in df.columns]
    if searched and set(searched) != set(rows):
        variants.append((searched, "every searched key"))
    for keys, what in variants:
        keys = [k for k in keys if k in df.columns]
        modes = {m: _mode(m, objective) for m in metrics}
        try:
            table = ablation_with_references(df, keys, metrics, modes, order=references or ())
        except Exception as error:  # noqa: BLE001 - one bad table must not lose the whole report
            section.notes.append(f"Table by {what} failed: {error}")
            continue
        title = f"By {', '.join(keys) or 'all trials'} ({what}): mean ± std over seeds, n = trials"
        section.tables.append(
            {"title": title, "html": table_html(table, modes), "markdown": formats.to_markdown(table)}
        )
    return section
