"""The HTML report's search section: Optuna's parameter importances and the optimisation history,
from the trials of a TPE or random sweep rebuilt as an Optuna study (``dashboards.study``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import pandas as pd

from dashboards import plots
from dashboards.report_sections import FigureEntry, Section
from dashboards.study import importances_of, rebuild_study

SEARCHER_TAG = "sweeper.searcher"
SEARCH_TAG = "sweeper.search_dims"


class FigureSaver(Protocol):
    """Writes a figure's files and returns its entry (``dashboards.report``'s builder)."""

    def save(self, figure: Any, name: str, title: str, caption: str = "") -> FigureEntry: ...


def optuna_section(
    build: FigureSaver,
    df: pd.DataFrame,
    searcher: str | None,
    dims: dict | None,
    search_keys: list[str],
    objective: dict[str, Any],
    end_times: Callable[[], dict[str, int]],
) -> Section:
    """Importances and history of the sweep's objective, or a note saying why there are none."""
    section = Section("optuna", "Parameter importances and optimisation history")
    if searcher == "grid":
        section.notes.append(
            "Grid sweep: every configuration was run, so there is no search to analyse "
            "(importances and optimisation history are for TPE / random sweeps)."
        )
        return section
    if searcher is None:
        section.notes.append(
            f"The parent run does not record its searcher (tag {SEARCHER_TAG}); "
            "the analysis below treats the trials as a TPE / random search."
        )
    if dims is None:
        section.notes.append(
            f"The parent run does not record the search dimensions (tag {SEARCH_TAG}); "
            "distributions are inferred from the values the trials used."
        )
    metric, mode = objective.get("metric"), objective.get("mode", "max")
    if not metric or metric not in df.columns:
        section.notes.append(f"The objective {metric!r} was not logged by any trial.")
        return section
    if not search_keys:
        section.notes.append("The sweep searched no parameters.")
        return section
    rebuilt = rebuild_study(df, search_keys, dims, metric, mode, end_times())
    section.notes.extend(rebuilt.notes)
    trials = rebuilt.study.trials
    if trials:
        values = [t.value for t in trials]
        figure = plots.optimization_history(values, mode, metric, rebuilt.labels)
        section.figures.append(
            build.save(
                figure,
                "optimization_history",
                f"optimisation history of {metric}",
                "Objective (mean over seeds) of each configuration in completion order; "
                f"the line is the best so far ({mode}).",
            )
        )
    # One pass over the trials (a set per parameter), not one per trial and parameter: quadratic
    # in the trials, that took seconds at 1,000 trials and minutes at 10,000.
    seen: dict[str, set[str]] = {}
    for t in trials:
        for name, value in t.params.items():
            seen.setdefault(name, set()).add(str(value))
    varied = {name for name, values in seen.items() if len(values) > 1}
    if len(trials) < 2 or not varied:
        section.notes.append("Importances need at least two finished configurations that differ.")
        return section
    if len({t.value for t in trials}) < 2:
        section.notes.append("Importances are undefined: the objective is the same for every configuration.")
        return section
    try:
        scores, warned = importances_of(rebuilt.study)
    except Exception as error:  # noqa: BLE001 - one failed analysis must not lose the whole report
        section.notes.append(f"Optuna could not compute importances: {type(error).__name__}: {error}")
        return section
    section.notes.extend(warned)
    if not scores or any(math.isnan(v) for v in scores.values()):
        section.notes.append("Optuna returned no usable importances.")
        return section
    section.figures.insert(
        0,
        build.save(
            plots.importances(scores, f"importance for {metric}"),
            "param_importances",
            f"parameter importances for {metric}",
            f"optuna.importance.get_param_importances (default evaluator, PED-ANOVA) on {len(trials)} "
            "configurations; each configuration's value is its mean over seeds.",
        ),
    )
    return section
