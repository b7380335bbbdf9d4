"""The report's figures: one function per figure, each returning a matplotlib ``Figure``.

Figures are built with the object-oriented API on an explicit Agg canvas (``FigureCanvasAgg``):
no pyplot, no global backend switch, nothing kept alive in pyplot's figure registry, and the same
result with or without a display. ``savefig`` on these figures writes PNG through Agg and PDF
through matplotlib's PDF backend.

Inputs are the tidy frames of :mod:`sweeper.tracking.results` (one row per trial) or small derived
structures; the functions do not talk to MLflow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

WISE_ID = re.compile(r"^wise/([0-9.]+)/id/acc$")
ZEROSHOT = "zeroshot"
MAX_LEGEND = 12  # more groups than this: colours only, no legend entries for the rest


def new_figure(width: float = 6.4, height: float = 4.2) -> Figure:
    """An empty figure on an Agg canvas, with constrained layout."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"]
    if n > 20:
        return [cmap(i / max(1, n - 1)) for i in range(n)]
    return [cmap(i) for i in range(n)]


def _label(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "(unset)"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def message(figure: Figure, text: str) -> Figure:
    figure.text(0.5, 0.5, text, ha="center", va="center", wrap=True, color="0.4")
    return figure


def is_numeric(series: pd.Series) -> bool:
    """Numeric and not boolean: plotted on a continuous axis."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def looks_log_spaced(values: Sequence[float]) -> bool:
    """Positive values spanning at least two decades (e.g. learning rates, weight decays)."""
    finite = [float(v) for v in values if v is not None and not pd.isna(v)]
    if len(set(finite)) < 3 or min(finite) <= 0:
        return False
    return max(finite) / min(finite) >= 100


def param_effects(
    df: pd.DataFrame, param: str, metrics: Sequence[str], log: bool | None = None, title: str | None = None
) -> Figure:
    """``param`` against each metric: mean ± std over seeds per value (one panel per metric).

    Numeric parameters sit on a continuous axis (logarithmic when ``log``, or when ``log`` is None
    and the values span two decades); booleans and strings are categories in sorted order.
    Trials without the parameter (a conditional key) are left out. Values seen once have no bar.
    """
    metrics = [m for m in metrics if m in df.columns]
    figure = new_figure(max(4.2, 3.6 * len(metrics)), 3.6)
    if not metrics or param not in df.columns:
        return message(figure, f"no data for {param}")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    present = df[df[param].notna()]
    numeric = is_numeric(df[param])
    use_log = bool(log) if log is not None else (numeric and looks_log_spaced(present[param].tolist()))
    for ax, metric in zip(axes, metrics, strict=True):
        stats = present.groupby(param, sort=True)[metric].agg(["mean", "std", "count"]).reset_index()
        stats = stats[stats["count"] > 0]
        if stats.empty:
            ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center", color="0.4")
        elif numeric:
            x = stats[param].astype("float64").to_numpy()
            ax.errorbar(x, stats["mean"], yerr=stats["std"].fillna(0.0), fmt="o-", capsize=3, lw=1.2, ms=5)
            ax.scatter(
                present[param].astype("float64"),
                present[metric],
                s=10,
                alpha=0.35,
                color="0.3",
                zorder=3,
                label="trials",
            )
            if use_log:
                ax.set_xscale("log")
        else:
            x = np.arange(len(stats))
            ax.errorbar(x, stats["mean"], yerr=stats["std"].fillna(0.0), fmt="o", capsize=4, ms=6)
            positions = {value: i for i, value in enumerate(stats[param].tolist())}
            jitter = present[param].map(positions).astype("float64")
            ax.scatter(jitter, present[metric], s=10, alpha=0.35, color="0.3", zorder=3, label="trials")
            ax.set_xticks(
                x,
                [_label(v) for v in stats[param]],
                rotation=30 if len(stats) > 4 else 0,
                ha="right" if len(stats) > 4 else "center",
            )
            ax.set_xlim(-0.5, len(stats) - 0.5)
        ax.set_xlabel(param + (" (log)" if use_log and numeric else ""))
        ax.set_ylabel(metric)
        ax.set_title(metric, fontsize=10)
        ax.grid(True, alpha=0.3)
    figure.suptitle(title or f"{param}: mean ± std over seeds", fontsize=11)
    return figure


def wise_alphas(df: pd.DataFrame) -> list[str]:
    """The alphas (as logged, e.g. ``"0.5"``) that have both wise/<a>/id/acc and .../ood/avg_acc."""
    found = []
    for column in df.columns:
        match = WISE_ID.match(str(column))
        if match and f"wise/{match.group(1)}/ood/avg_acc" in df.columns:
            found.append(match.group(1))
    return sorted(found, key=float)


def id_ood_scatter(
    df: pd.DataFrame, color_by: str | None = None, x: str = "id/acc", y: str = "ood/avg_acc", wise_by: str | None = None
) -> Figure:
    """``x`` vs ``y`` per trial, coloured by ``color_by``, with WiSE-FT curves and the zero-shot point.

    A WiSE-FT curve is drawn for each trial whose ``wise/<alpha>/...`` metrics exist, as a line
    through the alphas in increasing order (alpha = 0 is zero-shot, 1 the fine-tuned model), in the
    colour of the trial's group; ``wise_by`` (e.g. ``config_hash``) averages the curves of the
    seeds of one configuration first. Trials of the ``zeroshot`` method are drawn as stars.
    """
    figure = new_figure(6.8, 5.0)
    ax = figure.subplots()
    if x not in df.columns or y not in df.columns:
        return message(figure, f"needs the metrics {x} and {y}")
    groups = df[color_by].map(_label) if color_by and color_by in df.columns else pd.Series("trials", index=df.index)
    names = sorted(groups.unique(), key=str)
    colour = dict(zip(names, palette(len(names)), strict=True))
    alphas = wise_alphas(df)
    for k, name in enumerate(names):
        part = df[groups == name]
        zero = part["method"] == ZEROSHOT if "method" in part.columns else pd.Series(False, index=part.index)
        trained = part[~zero]
        if len(trained):
            ax.scatter(
                trained[x],
                trained[y],
                s=36,
                color=colour[name],
                edgecolor="black",
                linewidth=0.4,
                alpha=0.85,
                label=name if k < MAX_LEGEND else None,
                zorder=4,
            )
        if zero.any():
            ax.scatter(
                part.loc[zero, x],
                part.loc[zero, y],
                s=220,
                marker="*",
                color=colour[name],
                edgecolor="black",
                linewidth=0.6,
                zorder=5,
                label=f"{name} (zero-shot)" if name != ZEROSHOT else "zero-shot",
            )
        if alphas:
            curves = trained[[f"wise/{a}/id/acc" for a in alphas] + [f"wise/{a}/ood/avg_acc" for a in alphas]]
            keyed = (
                trained[wise_by]
                if wise_by and wise_by in trained.columns
                else pd.Series(range(len(trained)), index=trained.index)
            )
            curves = curves[curves.notna().any(axis=1)]
            if curves.empty:
                continue
            for _, curve in curves.groupby(keyed.loc[curves.index], sort=True):
                mean = curve.mean()
                xs = np.array([mean[f"wise/{a}/id/acc"] for a in alphas])
                ys = np.array([mean[f"wise/{a}/ood/avg_acc"] for a in alphas])
                ok = ~(np.isnan(xs) | np.isnan(ys))
                ax.plot(xs[ok], ys[ok], "-", color=colour[name], lw=1.3, alpha=0.8, zorder=3)
                ax.scatter(xs[ok], ys[ok], s=9, color=colour[name], zorder=3)
                for end, text in ((0, "α=0"), (-1, "α=1")):
                    index = np.flatnonzero(ok)
                    if len(index):
                        i = index[end]
                        ax.annotate(
                            text, (xs[i], ys[i]), textcoords="offset points", xytext=(4, 4), fontsize=7, color="0.25"
                        )
    if alphas:
        ax.plot([], [], "-", color="0.3", label="WiSE-FT curve (α: 0 → 1)")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{x} vs {y} per trial" + (f", coloured by {color_by}" if color_by else ""), fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    return figure


def importances(values: dict[str, float], title: str = "parameter importances") -> Figure:
    """Horizontal bars of Optuna parameter importances, most important on top."""
    figure = new_figure(6.0, max(2.2, 0.45 * len(values) + 1.2))
    if not values:
        return message(figure, "no importances")
    ax = figure.subplots()
    ordered = sorted(values.items(), key=lambda item: item[1])
    ax.barh([k for k, _ in ordered], [v for _, v in ordered], color="tab:blue")
    for i, (_, v) in enumerate(ordered):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(1.0, max(v for _, v in ordered) * 1.15))
    ax.set_xlabel("importance (normalised to sum to 1)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, axis="x", alpha=0.3)
    return figure


def optimization_history(
    values: Sequence[float], mode: str, metric: str, labels: Sequence[str] | None = None
) -> Figure:
    """Objective of each configuration in completion order, with the best-so-far line."""
    figure = new_figure(6.8, 4.0)
    if not len(values):
        return message(figure, "no completed configurations")
    ax = figure.subplots()
    order = np.arange(1, len(values) + 1)
    series = np.asarray(values, dtype="float64")
    best = np.fmax.accumulate(series) if mode == "max" else np.fmin.accumulate(series)
    ax.scatter(order, series, s=30, color="tab:blue", zorder=3, label=f"{metric} (mean over seeds)")
    ax.step(order, best, where="post", color="tab:red", lw=1.5, label=f"best so far ({mode})")
    if labels is not None and len(labels) <= 20:
        for i, text in zip(order, labels, strict=True):
            ax.annotate(text, (i, series[i - 1]), textcoords="offset points", xytext=(3, 4), fontsize=7, color="0.3")
    ax.set_xlabel("configuration, in completion order")
    ax.set_ylabel(metric)
    ax.set_title("optimisation history", fontsize=11)
    # A new axis's locator is an AutoLocator, a MaxNLocator: integer ticks for trial numbers.
    cast(MaxNLocator, ax.xaxis.get_major_locator()).set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return figure
