"""The HTML report's ID–OOD frontier figure: every trial, the Pareto front, the zero-shot point
and its effective-robustness line, and the WiSE-FT curves, one line per configuration.

The front and the curves come from :func:`sweeper.tables.frontier.frontier`, the computation
``sweeper report --layout pareto`` prints, so the figure and the table agree. Points are drawn at
their test accuracies (``id/acc``, ``ood/avg_acc``) even when the front was found on validation
objectives. Every artist carries a ``gid`` (``trials``, ``unfinished``, ``front``, ``zero-shot``,
``line``, ``wise:<configuration>``) so that tests and readers of the PDF can find each element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dashboards.plots import MAX_LEGEND, message, new_figure, palette
from dashboards.report_sections import FigureEntry, Section
from sweeper.tables.ablation import fmt_param
from sweeper.tables.completion import complete_mask
from sweeper.tables.frontier import POINT, TEST_METRICS, TRAINED, Frontier, zero_shot_point

if TYPE_CHECKING:
    from sweeper.tracking.launches import Launch

X, Y = TEST_METRICS


def _label(row: pd.Series, labels: list[str]) -> str:
    """``key=value, ...`` of a configuration (a missing value reads ``–``)."""
    return ", ".join(f"{k}={fmt_param(row[k], '–')}" for k in labels)


def frontier_figure(df: pd.DataFrame, result: Frontier) -> Figure:
    """ID vs OOD test accuracy: trials (unfinished ones hollow), the front, zero-shot, the line
    and each configuration's WiSE-FT curve (mean over seeds, alphas marked)."""
    figure = new_figure(7.2, 5.4)
    if X not in df.columns or Y not in df.columns:
        return message(figure, f"needs the metrics {X} and {Y}")
    ax = figure.subplots()
    done = complete_mask(df)
    ax.scatter(df.loc[done, X], df.loc[done, Y], s=18, color="0.55", alpha=0.7, label="trials", gid="trials", zorder=2)
    if (~done).any():
        ax.scatter(
            df.loc[~done, X],
            df.loc[~done, Y],
            s=22,
            facecolors="none",
            edgecolors="0.4",
            label="unfinished (not on the front)",
            gid="unfinished",
            zorder=2,
        )
    table = result.table
    wise = table[table[POINT] != TRAINED]
    configs = wise.groupby(result.labels, dropna=False, sort=True) if result.labels and len(wise) else []
    colours = palette(max(1, len(configs)))
    for k, (_, curve) in enumerate(configs):
        curve = curve.sort_values("wise_alpha")
        name = _label(curve.iloc[0], result.labels)
        xs, ys = curve[f"{X} mean"].to_numpy(), curve[f"{Y} mean"].to_numpy()
        ax.plot(
            xs,
            ys,
            "-o",
            ms=3,
            lw=1.2,
            color=colours[k],
            alpha=0.85,
            label=f"WiSE-FT {name}" if k < MAX_LEGEND else None,
            gid=f"wise:{name}",
            zorder=3,
        )
        for x, y, alpha in zip(xs, ys, curve["wise_alpha"], strict=True):
            ax.annotate(f"α={alpha:g}", (x, y), textcoords="offset points", xytext=(3, -9), fontsize=6, color="0.3")
    front = result.front
    if f"{X} mean" in front.columns and f"{Y} mean" in front.columns:
        order = front.sort_values(f"{X} mean")
        ax.plot(
            order[f"{X} mean"],
            order[f"{Y} mean"],
            "D--",
            color="tab:red",
            ms=7,
            mfc="none",
            mew=1.6,
            lw=1.0,
            label=f"front ({' x '.join(result.metrics)})",
            gid="front",
            zorder=5,
        )
    zs, _ = zero_shot_point(df[done], TEST_METRICS)
    if zs is not None:
        ax.scatter(
            [zs[0]],
            [zs[1]],
            s=240,
            marker="*",
            color="gold",
            edgecolor="black",
            label="zero-shot",
            gid="zero-shot",
            zorder=6,
        )
    if result.line is not None:
        low, high = ax.get_xlim()
        xs = np.linspace(low, high, 50)
        ys = [result.line.predict(float(x)) for x in xs]
        kind = "zero-shot line" if result.line.kind == "zero-shot" else "fitted line"
        ax.plot(xs, ys, ":", color="0.2", lw=1.2, label=f"effective robustness 0 ({kind})", gid="line", zorder=1)
        ax.set_xlim(low, high)
    ax.set_xlabel(f"{X} (test)")
    ax.set_ylabel(f"{Y} (test)")
    ax.set_title("ID vs OOD: trials, Pareto front, zero-shot and WiSE-FT curves", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    return figure


def frontier_section(
    save: Callable[[Figure, str, str, str], FigureEntry],
    df: pd.DataFrame,
    meta: dict[str, Any],
    search_keys: list[str],
    tracking_uri: str | None = None,
    launch: Launch | None = None,
) -> Section:
    """The report's frontier section: the figure, or a note saying why there is none. Configurations
    are told apart by the method (when it varies) and ``search_keys``."""
    from sweeper.tables.frontier import default_line, frontier, mode_of, objective_metrics
    from sweeper.tracking.launch_reads import add_epochs_run, sweep_file
    from trainables.errors import InputError

    section = Section("frontier", "Pareto front in the ID–OOD plane")
    objectives = [o for o in meta.get("objectives") or [] if isinstance(o, dict)]
    metrics = objective_metrics(objectives)
    missing = [m for m in {*metrics, X, Y} if m not in df.columns]
    if missing:
        section.notes.append(f"No frontier: the trials did not log {', '.join(sorted(missing))}.")
        return section
    frame = add_epochs_run(df.copy(), tracking_uri, launch)
    frame.attrs = dict(df.attrs)
    spec = sweep_file(meta["sweep"], tracking_uri, parent_run_id=meta["parent_run_id"])
    line, why = default_line(frame[complete_mask(frame)], (spec or {}).get("data"))
    keys = [k for k in dict.fromkeys(["method", *search_keys]) if k in frame.columns and k != "seed"]
    labels = [k for k in keys if k != "method" or frame[k].nunique(dropna=False) > 1] or ["method"]
    try:
        result = frontier(frame, metrics, [mode_of(m, objectives) for m in metrics], labels, line=line)
    except InputError as error:  # e.g. no finished trial yet: the rest of the report still stands
        section.notes.append(f"No frontier: {error.message}.")
        return section
    caption = (
        f"Grey: every trial; red diamonds: the front of {' x '.join(metrics)} (means over seeds, "
        f"drawn at their test accuracies); star: zero-shot; lines with α: WiSE-FT curves per configuration."
    )
    caption += f" Dotted: {line.describe()}." if line is not None else f" No effective-robustness line: {why}."
    if len(result.excluded):
        caption += f" Hollow: {len(result.excluded)} trial(s) that did not finish their last epoch."
    section.figures.append(save(frontier_figure(frame, result), "frontier", "ID vs OOD frontier", caption))
    return section
