"""The HTML report's learning curves: id/acc and ood/avg_acc per epoch.

Up to :data:`CURVE_TRIALS` trials, one line per configuration (the mean over seeds, a ± std band),
as ``learning_curves`` draws them. Past it, one line per configuration would be thousands of
lines nobody can read (and minutes of drawing), so the figure aggregates instead: the median of
every trial per epoch with the band between its 10th and 90th percentiles, and the
:data:`CURVE_TOP` best configurations on the sweep's objective drawn on top. The section's note
and the figure's caption say which view the page shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from dashboards import plots
from dashboards.report_sections import FigureEntry, Section
from dashboards.study import CONFIG

CURVE_METRICS = ("id/acc", "ood/avg_acc")
# Trials past which the learning curves are aggregated rather than drawn per configuration.
CURVE_TRIALS = 200
CURVE_TOP = 10  # configurations drawn as lines over the aggregate
BAND = (0.1, 0.9)  # the aggregate's band: these quantiles of all trials at each epoch


def curve_frame(history: pd.DataFrame, labelled: pd.DataFrame) -> pd.DataFrame:
    """``config, metric, step, mean, std, n``: the history averaged over seeds per configuration."""
    joined = history.merge(labelled[["run_id", CONFIG]], on="run_id", how="inner")
    stats = joined.groupby([CONFIG, "metric", "step"])["value"].agg(["mean", "std", "count"]).reset_index()
    return stats.rename(columns={CONFIG: "config", "count": "n"})


def best_configs(labelled: pd.DataFrame, objective: dict[str, Any], count: int) -> list[str]:
    """The ``count`` configurations with the best mean objective over seeds (none without one)."""
    metric, mode = objective.get("metric"), objective.get("mode", "max")
    if not metric or metric not in labelled.columns:
        return []
    means = labelled.groupby(CONFIG)[metric].mean().dropna()
    return list(means.sort_values(ascending=mode == "min").index[:count])


def aggregate_figure(history: pd.DataFrame, curves: pd.DataFrame, top: list[str], trials: int) -> Figure:
    """Median and quantile band of every trial per epoch, with the ``top`` configurations' means."""
    metrics = [m for m in CURVE_METRICS if m in set(history["metric"])]
    figure = plots.new_figure(max(4.5, 4.2 * max(1, len(metrics))), 3.8)
    if not metrics:
        return plots.message(figure, "no per-epoch history")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    colours = plots.palette(max(1, len(top)))
    for ax, metric in zip(axes, metrics, strict=True):
        values = history[history["metric"] == metric].groupby("step")["value"]
        spread = values.quantile(list(BAND)).unstack()
        median = values.median()
        epochs = median.index.to_numpy() + 1
        low, high = spread[BAND[0]].to_numpy(), spread[BAND[1]].to_numpy()
        band = f"{BAND[0]:.0%}-{BAND[1]:.0%} of all {trials} trials"
        ax.fill_between(epochs, low, high, color="0.6", alpha=0.35, lw=0, label=band, gid="band")
        ax.plot(epochs, median.to_numpy(), "-", color="0.2", lw=2, label="median of all trials", gid="median")
        for k, config in enumerate(top):
            part = curves[(curves["config"] == config) & (curves["metric"] == metric)].sort_values("step")
            if len(part):
                ax.plot(part["step"] + 1, part["mean"], "o-", ms=3, lw=1.1, color=colours[k], label=config)
        epoch_axes(ax, metric)
    axes[-1].legend(fontsize=6, loc="best", framealpha=0.85)
    figure.suptitle(f"learning curves of {trials} trials: aggregate and the best configurations", fontsize=11)
    return figure


def curves_section(
    save: Callable[[Figure, str, str, str], FigureEntry],
    history: pd.DataFrame,
    labelled: pd.DataFrame,
    objective: dict[str, Any],
) -> Section:
    """The learning-curves section: per configuration up to CURVE_TRIALS trials, else aggregated."""
    section = Section("curves", "Learning curves")
    if history.empty:
        section.notes.append("No per-epoch history of id/acc or ood/avg_acc.")
        return section
    curves = curve_frame(history, labelled)
    trials = len(labelled)
    if trials <= CURVE_TRIALS:
        figure = learning_curves(curves, CURVE_METRICS)
        caption = "Mean over seeds per configuration; bands are ± std."
        section.figures.append(save(figure, "learning_curves", "id/acc and ood/avg_acc per epoch", caption))
        return section
    top = best_configs(labelled, objective, CURVE_TOP)
    ranked = f"the {len(top)} best configurations on {objective.get('metric')} (mean over seeds)" if top else ""
    section.notes.append(
        f"{trials} trials is more than {CURVE_TRIALS} (dashboards.curves_section.CURVE_TRIALS): the curves are "
        f"aggregated rather than drawn per configuration: every trial's values at each epoch give the median "
        f"and the {BAND[0]:.0%}-{BAND[1]:.0%} band" + (f"; the lines are {ranked}." if ranked else ".")
    )
    caption = f"Line and band: median and {BAND[0]:.0%}-{BAND[1]:.0%} quantiles of all {trials} trials per epoch"
    caption += f"; coloured lines: {ranked}." if ranked else "."
    figure = aggregate_figure(history, curves, top, trials)
    section.figures.append(save(figure, "learning_curves", "id/acc and ood/avg_acc per epoch", caption))
    return section


def learning_curves(curves: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """Per-epoch curves, one line per configuration: mean over seeds, band = ± std.

    ``curves`` is long: ``config, metric, step, mean, std, n`` (see ``dashboards.report``).
    A configuration with a single step (zero-shot: evaluated, never trained) is drawn as a dashed
    horizontal reference line when other configurations have several epochs, else as a point.
    """
    metrics = [m for m in metrics if m in set(curves["metric"])] if len(curves) else []
    figure = plots.new_figure(max(4.5, 4.2 * max(1, len(metrics))), 3.8)
    if not metrics:
        return plots.message(figure, "no per-epoch history")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    configs = sorted(curves["config"].unique(), key=str)
    colour = dict(zip(configs, plots.palette(len(configs)), strict=True))
    several = curves["step"].nunique() > 1
    for ax, metric in zip(axes, metrics, strict=True):
        for k, config in enumerate(configs):
            part = curves[(curves["config"] == config) & (curves["metric"] == metric)].sort_values("step")
            if part.empty:
                continue
            if len(part) == 1 and several:
                ax.axhline(
                    float(part["mean"].iloc[0]),
                    color=colour[config],
                    ls="--",
                    lw=1.2,
                    label=f"{config} (not trained)" if k < plots.MAX_LEGEND else None,
                )
                continue
            epochs = part["step"].to_numpy() + 1
            mean, std = part["mean"].to_numpy(), part["std"].fillna(0.0).to_numpy()
            ax.plot(
                epochs,
                mean,
                "o-" if len(part) > 1 else "o",
                color=colour[config],
                lw=1.3,
                ms=3.5,
                label=config if k < plots.MAX_LEGEND else None,
            )
            if len(part) > 1 and (std > 0).any():
                ax.fill_between(epochs, mean - std, mean + std, color=colour[config], alpha=0.15, lw=0)
        epoch_axes(ax, metric)
    axes[-1].legend(fontsize=7, loc="best", framealpha=0.85)
    figure.suptitle("learning curves: mean over seeds per configuration", fontsize=11)
    return figure


def epoch_axes(ax: Any, metric: str) -> None:
    """The axes of one learning-curve panel: epochs (integers) against ``metric``."""
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch", fontsize=10)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
