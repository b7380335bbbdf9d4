"""Ablation tables: mean ± std over seeds per configuration, and their renderings.

``ablation_table`` returns a plain numeric DataFrame (row parameters, then ``"<metric> mean"``,
``"<metric> std"`` per metric, then ``"n"``); the renderers turn it into terminal, Markdown, LaTeX
and CSV text. The best mean of each metric is found again by every renderer from ``table.attrs``
(rows, metrics, modes), so a table read back from CSV can be marked with explicit arguments too.

Formatting decisions:
- std uses ddof=1; with one seed it is NaN (unknown, not zero) and the cell shows the mean alone.
- Display precision is 3 decimals; CSV keeps full float precision and no markup.
- When every metric has the same number of seeds in a row there is one ``n`` column; otherwise the
  table has ``"<metric> n"`` columns and the display cells read ``0.712 ± 0.013 (n=2)``.
- Best means (ties included) are bold: rich bold, ``**...**`` in Markdown, ``\\textbf{}`` in LaTeX.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trainables.errors import InputError

ALL_ROW = "config"  # the one label column when no row parameters are given
_NOT_ROWS = {"run_id", "trial_id", "status", "config_hash"}


def default_mode(metric: str) -> str:
    """``min`` for calibration errors, likelihoods and losses, ``max`` for everything else."""
    last = metric.rsplit("/", 1)[-1]
    return "min" if last in ("ece", "nll") or last.endswith("loss") else "max"


def _available(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Row-parameter and metric columns: from ``results.load``'s attrs, else guessed."""
    metrics = df.attrs.get("metrics") or [c for c in df.columns if "/" in str(c)
                                          and pd.api.types.is_numeric_dtype(df[c])]
    params = df.attrs.get("params") or [c for c in df.columns if c not in metrics and c not in _NOT_ROWS]
    return list(params), list(metrics)


def check_columns(df: pd.DataFrame, rows: list[str], metrics: list[str],
                  where_rows: str = "rows", where_metrics: str = "metrics") -> None:
    """Raise ``InputError`` naming ``where_*`` for row or metric names the frame lacks."""
    params, known = _available(df)
    for name in rows:
        if name not in df.columns or name in known:
            raise InputError(where_rows, f"unknown row parameter {name!r}; available: {', '.join(params) or '(none)'}")
    if not metrics:
        raise InputError(where_metrics, f"no metrics given; available: {', '.join(known) or '(none)'}")
    for name in metrics:
        if name not in known or not pd.api.types.is_numeric_dtype(df[name]):
            raise InputError(where_metrics, f"unknown metric {name!r}; available: {', '.join(known) or '(none)'}")


def ablation_table(df: pd.DataFrame, rows: list[str], metrics: list[str],
                   modes: dict[str, str] | None = None) -> pd.DataFrame:
    """Mean, std (ddof=1) and n of each metric per configuration of ``rows``, sorted by ``rows``.

    Trials missing a row parameter (conditional params) form their own group (NaN sorts last).
    ``modes`` maps a metric to ``"max"`` or ``"min"``, overriding :func:`default_mode`.
    """
    check_columns(df, rows, metrics)
    chosen = {m: (modes or {}).get(m, default_mode(m)) for m in metrics}
    for metric, mode in chosen.items():
        if mode not in ("max", "min"):
            raise InputError("modes", f"mode of {metric!r} must be 'max' or 'min', not {mode!r}")
    if rows:
        grouped = df.groupby(rows, dropna=False, sort=True)[metrics]
        stats = grouped.agg(["mean", "std", "count"]).reset_index()
        stats.columns = [a if not b else f"{a} {b}" for a, b in stats.columns]
    else:
        part = df[metrics]
        flat = {ALL_ROW: ["all"]}
        for m in metrics:
            flat.update({f"{m} mean": [part[m].mean()], f"{m} std": [part[m].std()], f"{m} count": [part[m].count()]})
        stats = pd.DataFrame(flat)
    label = rows or [ALL_ROW]
    counts = stats[[f"{m} count" for m in metrics]].astype("int64")
    table = stats[label].copy()
    for m in metrics:
        table[f"{m} mean"] = stats[f"{m} mean"].astype("float64")
        table[f"{m} std"] = stats[f"{m} std"].astype("float64")
    if (counts.nunique(axis=1) <= 1).all():
        table["n"] = counts.iloc[:, 0].to_numpy()
    else:  # some trials lack a metric: keep the count next to each metric instead of one n
        for m in metrics:
            table[f"{m} n"] = counts[f"{m} count"].to_numpy()
    table.attrs = {"rows": list(label), "metrics": list(metrics), "modes": chosen}
    return table


def best_rows(table: pd.DataFrame, metrics: list[str] | None = None,
              modes: dict[str, str] | None = None) -> dict[str, set[int]]:
    """Per metric, the positions of the rows whose mean is best (all of them on a tie)."""
    metrics = metrics or table.attrs.get("metrics", [])
    chosen = {**table.attrs.get("modes", {}), **(modes or {})}
    best: dict[str, set[int]] = {}
    for m in metrics:
        means = table[f"{m} mean"].to_numpy(dtype="float64")
        valid = [v for v in means if not math.isnan(v)]
        if not valid:
            best[m] = set()
            continue
        target = max(valid) if chosen.get(m, default_mode(m)) == "max" else min(valid)
        best[m] = {i for i, v in enumerate(means) if v == target}
    return best


def _n(table: pd.DataFrame, metric: str, i: int) -> int:
    column = "n" if "n" in table.columns else f"{metric} n"
    return int(table[column].iloc[i])


def _cell(table: pd.DataFrame, metric: str, i: int, pm: str, dash: str, precision: int = 3) -> str:
    """``mean ± std`` (std omitted for n=1), with ``(n=k)`` when n is kept per metric."""
    mean, std = table[f"{metric} mean"].iloc[i], table[f"{metric} std"].iloc[i]
    if pd.isna(mean):
        return dash
    text = f"{mean:.{precision}f}" if pd.isna(std) else f"{mean:.{precision}f}{pm}{std:.{precision}f}"
    return text if "n" in table.columns else f"{text} (n={_n(table, metric, i)})"


def _param(value: Any, dash: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return dash
    return f"{value:g}" if isinstance(value, float) else str(value)


def _grid(table: pd.DataFrame, pm: str, dash: str, bold: str,
          esc: Callable[[str], str] = str) -> tuple[list[str], list[list[str]]]:
    """Header and display cells shared by the renderers.

    ``bold`` has one ``{}``; ``esc`` quotes names and parameter values for the target markup
    (metric cells are digits and the renderer's own ``pm``/``dash``, so they are not escaped).
    """
    rows, metrics = table.attrs["rows"], table.attrs["metrics"]
    best = best_rows(table)
    header = [esc(h) for h in [*rows, *metrics, *(["n"] if "n" in table.columns else [])]]
    body = []
    for i in range(len(table)):
        line = [esc(_param(table[r].iloc[i], dash)) for r in rows]
        for m in metrics:
            text = _cell(table, m, i, pm, dash)
            line.append(bold.format(text) if i in best[m] else text)
        if "n" in table.columns:
            line.append(str(_n(table, metrics[0], i)))
        body.append(line)
    return header, body


def to_rich(table: pd.DataFrame, title: str | None = None, caption: str | None = None) -> Table:
    """A rich Table for the terminal; best means in bold."""
    header, body = _grid(table, " ± ", "–", "[bold]{}[/bold]", esc=escape)
    out = Table(title=None if title is None else escape(title),
                caption=None if caption is None else escape(caption))
    for k, name in enumerate(header):
        out.add_column(name, justify="left" if k < len(table.attrs["rows"]) else "right")
    for line in body:
        out.add_row(*line)
    return out


def to_text(table: pd.DataFrame, title: str | None = None, color: bool = False, width: int = 200) -> str:
    """The rich table as a string (ANSI bold only when ``color``)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system="standard" if color else None)
    console.print(to_rich(table, title))
    return buffer.getvalue()


def to_markdown(table: pd.DataFrame) -> str:
    """GitHub Markdown (tabulate); best means as ``**...**``."""
    header, body = _grid(table, " ± ", "–", "**{}**", esc=lambda text: text.replace("|", r"\|"))
    align = ["left"] * len(table.attrs["rows"]) + ["right"] * (len(header) - len(table.attrs["rows"]))
    # disable_numparse: cells are already formatted; tabulate must not reformat "1" or "0.710".
    return pd.DataFrame(body, columns=header).to_markdown(index=False, disable_numparse=True,
                                                          colalign=align) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: pd.DataFrame) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``); best means as ``\\textbf{}``."""
    header, body = _grid(table, r" $\pm$ ", "--", r"\textbf{{{}}}", esc=latex_escape)
    n_rows = len(table.attrs["rows"])
    spec = "l" * n_rows + "r" * (len(header) - n_rows)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(line) + r" \\" for line in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_csv(table: pd.DataFrame) -> str:
    """Machine-readable CSV: row parameters, then mean/std/n columns at full precision."""
    return table.to_csv(index=False, lineterminator="\n")
