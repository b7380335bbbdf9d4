"""Renderers of :func:`sweeper.tables.ablation.ablation_table` tables: terminal, Markdown, LaTeX,
HTML, CSV.

Every renderer but CSV goes through :func:`sweeper.tables.display.grid`, so they agree on the
layout: label columns, then one column per metric (per column group when the table has
``columns``), then ``n``.
A cell reads ``mean ± spread`` (std, or the 95% CI half-width with ``stat="ci"``; the mean alone
when n=1), best means in bold and second best underlined, then ``(n=k)`` when a row's cells differ
in n, then ``(+0.012)`` when the table has deltas (the reference row shows none).

- Markdown: GitHub tables, ``**best**`` and ``<u>second</u>`` (Markdown has no underline); a pivot's
  two header levels are flattened to ``metric (key=value)``.
- LaTeX: a booktabs ``tabular`` (``\\usepackage{booktabs}``), ``\\textbf{}``, ``\\underline{}``,
  ``$\\pm$``, text escaped; a pivot gets ``\\multicolumn`` group titles with ``\\cmidrule``.
  ``caption``/``label`` wrap it in a ``table`` float.
- HTML: one ``<table class="sweeper-table">`` (no page around it), ``<b>``, ``<u>``, text escaped.
- CSV: the long numeric table itself (mean, std, ci, [delta,] n columns), full precision, no markup.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sweeper.tables.ablation import fmt_param
from sweeper.tables.display import Grid, grid

FORMATS = ("markdown", "latex", "html", "csv")


@dataclass(frozen=True)
class _Markup:
    pm: str
    dash: str
    bold: str  # one "{}"
    underline: str
    esc: Callable[[str], str] = str
    plus: str = "+"
    minus: str = "-"


def _cells(g: Grid, mk: _Markup) -> list[list[str]]:
    """Display text of every value cell, row by row (numbers and markup only: nothing to escape)."""
    p = g.precision
    out = []
    for line in g.cells:
        texts = []
        for cell in line:
            if cell is None:
                texts.append(mk.dash)
                continue
            text = f"{cell.mean:.{p}f}" if math.isnan(cell.spread) else f"{cell.mean:.{p}f}{mk.pm}{cell.spread:.{p}f}"
            if cell.rank is not None:
                text = (mk.bold if cell.rank == 0 else mk.underline).format(text)
            if g.n is None:
                text += f" (n={cell.n})"
            if not math.isnan(cell.delta):
                shown = float(f"{cell.delta:.{p}f}")
                text += f" ({mk.minus if shown < 0 else mk.plus}{abs(cell.delta):.{p}f})"
            texts.append(text)
        out.append(texts)
    return out


def _labels(g: Grid, mk: _Markup) -> list[list[str]]:
    return [[mk.esc(fmt_param(v, mk.dash)) for v in line] for line in g.labels]


def _flat_header(g: Grid, join: str = "{head} ({group})") -> list[str]:
    """One header row: label names, ``head`` (or ``join`` of head and group) per value column, then n."""
    heads = [join.format(head=h, group=group) if group else h for group in g.groups for h in g.heads]
    return [*g.label_names, *heads, *(["n"] if g.n is not None else [])]


def _body(g: Grid, mk: _Markup) -> list[list[str]]:
    counts = [[str(n)] for n in g.n] if g.n is not None else [[] for _ in g.labels]
    return [[*a, *b, *c] for a, b, c in zip(_labels(g, mk), _cells(g, mk), counts, strict=True)]


def to_rich(
    table: pd.DataFrame, title: str | None = None, caption: str | None = None, stat: str = "std", precision: int = 3
) -> Table:
    """A rich Table for the terminal; best in bold, second best underlined."""
    g = grid(table, stat, precision)
    mk = _Markup(" ± ", "–", "[bold]{}[/bold]", "[underline]{}[/underline]", esc=escape)
    out = Table(title=None if title is None else escape(title), caption=None if caption is None else escape(caption))
    for k, name in enumerate(_flat_header(g, "{group}\n{head}")):
        out.add_column(escape(name), justify="left" if k < len(g.label_names) else "right")
    for line in _body(g, mk):
        out.add_row(*line)
    return out


def to_text(
    table: pd.DataFrame,
    title: str | None = None,
    color: bool = False,
    width: int = 200,
    stat: str = "std",
    precision: int = 3,
) -> str:
    """The rich table as a string (ANSI bold/underline only when ``color``)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system="standard" if color else None)
    console.print(to_rich(table, title, stat=stat, precision=precision))
    return buffer.getvalue()


def to_markdown(table: pd.DataFrame, stat: str = "std", precision: int = 3) -> str:
    """GitHub Markdown (tabulate); ``**best**``, ``<u>second best</u>``."""
    g = grid(table, stat, precision)
    mk = _Markup(" ± ", "–", "**{}**", "<u>{}</u>", esc=lambda text: text.replace("|", r"\|"))
    header = [mk.esc(h) for h in _flat_header(g)]
    align = ["left"] * len(g.label_names) + ["right"] * (len(header) - len(g.label_names))
    # disable_numparse: cells are already formatted; tabulate must not reformat "1" or "0.710".
    return (
        pd.DataFrame(_body(g, mk), columns=header).to_markdown(index=False, disable_numparse=True, colalign=align)
        + "\n"
    )


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(
    table: pd.DataFrame, stat: str = "std", precision: int = 3, caption: str | None = None, label: str | None = None
) -> str:
    """A booktabs ``tabular``; ``\\textbf{}`` best, ``\\underline{}`` second best.

    With ``caption`` or ``label`` the tabular is wrapped in a centred ``table`` float.
    """
    g = grid(table, stat, precision)
    mk = _Markup(r" $\pm$ ", "--", r"\textbf{{{}}}", r"\underline{{{}}}", esc=latex_escape, plus="$+$", minus="$-$")
    n_labels, width = len(g.label_names), len(g.heads)
    tail = ["n"] if g.n is not None else []
    spec = "l" * n_labels + "r" * (width * len(g.groups) + len(tail))
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    if g.groups != [""]:
        titles = [rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(t)}}}" for t in g.groups]
        lines.append(" & ".join([""] * n_labels + titles + [""] * len(tail)) + r" \\")
        starts = [n_labels + k * width + 1 for k in range(len(g.groups))]
        lines.append(" ".join(rf"\cmidrule(lr){{{s}-{s + width - 1}}}" for s in starts))
    header = [*g.label_names, *(g.heads * len(g.groups)), *tail]
    lines += [" & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(line) + r" \\" for line in _body(g, mk)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption is not None or label is not None:
        inner = [r"\begin{table}[t]", r"\centering", *lines]
        inner += [rf"\caption{{{latex_escape(caption)}}}"] if caption is not None else []
        inner += [rf"\label{{{label}}}"] if label is not None else []
        lines = [*inner, r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(table: pd.DataFrame, stat: str = "std", precision: int = 3, caption: str | None = None) -> str:
    """One ``<table class="sweeper-table">`` element: ``<b>`` best, ``<u>`` second best."""
    g = grid(table, stat, precision)
    mk = _Markup(" &plusmn; ", "&ndash;", "<b>{}</b>", "<u>{}</u>", esc=html.escape, minus="&minus;")
    right = ' style="text-align:right"'
    pivot = g.groups != [""]
    span = ' rowspan="2"' if pivot else ""
    out = ['<table class="sweeper-table">']
    if caption is not None:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    first = [f"<th{span}>{html.escape(name)}</th>" for name in g.label_names]
    heads = [f"<th{right}>{html.escape(h)}</th>" for h in g.heads * len(g.groups)]
    tail = [f"<th{span}{right}>n</th>"] if g.n is not None else []
    out.append("<thead>")
    if pivot:
        groups = [f'<th colspan="{len(g.heads)}">{html.escape(t)}</th>' for t in g.groups]
        out += ["<tr>" + "".join(first + groups + tail) + "</tr>", "<tr>" + "".join(heads) + "</tr>"]
    else:
        out.append("<tr>" + "".join(first + heads + tail) + "</tr>")
    out += ["</thead>", "<tbody>"]
    for line in _body(g, mk):
        cells = [f"<td>{v}</td>" for v in line[: len(g.label_names)]]
        cells += [f"<td{right}>{v}</td>" for v in line[len(g.label_names) :]]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out) + "\n"


def to_csv(table: pd.DataFrame) -> str:
    """Machine-readable CSV: row and column parameters, then mean/std/ci/[delta]/n at full precision."""
    return table.to_csv(index=False, lineterminator="\n")


def render(table: pd.DataFrame, fmt: str, stat: str = "std", precision: int = 3) -> str:
    """``table`` as ``markdown``, ``latex``, ``html`` or ``csv`` text (CSV ignores stat/precision)."""
    if fmt == "csv":
        return to_csv(table)
    return {"markdown": to_markdown, "latex": to_latex, "html": to_html}[fmt](table, stat=stat, precision=precision)


RENDERERS: dict[str, Callable[..., str]] = {"markdown": to_markdown, "latex": to_latex, "html": to_html, "csv": to_csv}
