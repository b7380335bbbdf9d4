"""Rebuild an Optuna study from a sweep's trials (MLflow) for importances and optimisation history.

The sweep's own study lives in the Ray driver and is gone once it ends; the trials' searched values
and objective, with the search dims the parent run stores, are enough to rebuild it in memory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboards import plots

CONFIG = "__config"  # the label of a trial's configuration (its searched values, seed excluded)


def distribution_of(dim: dict[str, Any]):
    """The Optuna distribution of one search dimension in the sweep file's words."""
    import optuna

    if "int" in dim:
        low, high = dim["int"]
        return optuna.distributions.IntDistribution(int(low), int(high), log=bool(dim.get("log")))
    if "float" in dim:
        low, high = dim["float"]
        return optuna.distributions.FloatDistribution(float(low), float(high), log=bool(dim.get("log")))
    choices = list(dim.get("choice", dim.get("grid")) or [])
    plain = [c if c is None or isinstance(c, (bool, int, float, str)) else json.dumps(c) for c in choices]
    return optuna.distributions.CategoricalDistribution(plain)


def inferred_distribution(series: pd.Series):
    """A distribution covering the values the trials used (for parent runs without dims)."""
    import optuna

    values = [v.item() if hasattr(v, "item") else v for v in series.dropna().tolist()]
    if not values:
        return None
    if plots.is_numeric(series) and len(set(values)) > 1:
        low, high = min(values), max(values)
        if pd.api.types.is_integer_dtype(series):
            return optuna.distributions.IntDistribution(int(low), int(high))
        return optuna.distributions.FloatDistribution(float(low), float(high), log=plots.looks_log_spaced(values))
    return optuna.distributions.CategoricalDistribution(sorted(set(values), key=str))


_NO_VALUE = object()


def param_value(value: Any, distribution) -> Any:
    """``value`` as ``distribution`` expects it, or ``_NO_VALUE`` when it does not fit."""
    import optuna

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return _NO_VALUE
    value = value.item() if hasattr(value, "item") else value
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        for choice in distribution.choices:
            if str(choice) == str(value):
                return choice
            if (
                isinstance(value, (int, float))
                and isinstance(choice, (int, float))
                and not isinstance(choice, bool)
                and math.isclose(float(choice), float(value), rel_tol=1e-9, abs_tol=1e-12)
            ):
                return choice
        return _NO_VALUE
    try:
        number = int(value) if isinstance(distribution, optuna.distributions.IntDistribution) else float(value)
    except (TypeError, ValueError):
        return _NO_VALUE
    return number if distribution.low <= number <= distribution.high else _NO_VALUE


@dataclass
class StudyResult:
    study: Any  # optuna.Study
    labels: list[str]  # configuration label per study trial, in completion order
    notes: list[str]


def rebuild_study(
    df: pd.DataFrame,
    search_keys: list[str],
    dims: dict[str, dict[str, Any]] | None,
    metric: str,
    mode: str,
    end_times: dict[str, int] | None = None,
) -> StudyResult:
    """An in-memory Optuna study with one finished trial per configuration, in completion order.

    A configuration's value is the mean of ``metric`` over its finished seeds (what Ray's
    ``Repeater`` hands the searcher); it completes when its last seed does (``end_times`` maps
    run id -> end time in ms; without it, trial order). ``df`` needs the ``__config`` column of
    :func:`with_config_labels`.
    """
    import optuna

    notes: list[str] = []
    keys = [k for k in search_keys if k in df.columns]
    if dims:
        distributions = {k: distribution_of(dims[k]) for k in keys if k in dims}
        lacking = [k for k in keys if k not in dims]
        for k in lacking:
            inferred = inferred_distribution(df[k])
            if inferred is not None:
                distributions[k] = inferred
        if lacking:
            notes.append(f"No search dimension logged for {', '.join(lacking)}; inferred from the trials.")
    else:
        distributions = {k: d for k in keys if (d := inferred_distribution(df[k])) is not None}
    finished = df[(df["status"] == "FINISHED") & df[metric].notna()] if metric in df.columns else df.iloc[0:0]
    skipped = len(df) - len(finished)
    if skipped:
        notes.append(f"{skipped} trial(s) not finished or without {metric}: left out of the study.")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line on stderr
    try:
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    # Plain arrays and one pass, not a pandas group per configuration: at 5,000 configurations
    # pandas' per-group frames (each deep-copying the frame's attrs) took most of a minute.
    positions: dict[Any, list[int]] = {}
    for position, label in enumerate(finished[CONFIG].tolist()):
        if not pd.isna(label):  # as groupby, which drops missing keys
            positions.setdefault(label, []).append(position)
    index, run_ids = finished.index.tolist(), finished["run_id"].tolist()
    objective = finished[metric].to_numpy(dtype="float64")
    columns = {key: finished[key].to_numpy(dtype=object) for key in distributions}
    groups = []
    for label, rows in positions.items():
        ends = [(end_times or {}).get(run_ids[r], 0) or 0 for r in rows]
        groups.append((max(ends) if end_times else 0, min(index[r] for r in rows), label, rows))
    groups.sort(key=lambda g: (g[0], g[1]))
    labels = []
    for _, _, label, rows in groups:
        params, used = {}, {}
        for key, distribution in distributions.items():
            value = param_value(columns[key][rows[0]], distribution)
            if value is not _NO_VALUE:
                params[key], used[key] = value, distribution
        value = float(pd.Series(objective[rows]).mean())  # pandas' mean, as the tables average
        trial = optuna.trial.create_trial(params=params, distributions=used, value=value)
        study.add_trial(trial)
        labels.append(str(label))
    return StudyResult(study, labels, notes)


def importances_of(study) -> tuple[dict[str, float], list[str]]:
    """Optuna's parameter importances with its default evaluator, and any warnings it raised.

    In Optuna 5 the default is PED-ANOVA: no scikit-learn needed, and conditional parameters are
    assessed too (fANOVA would drop every parameter some configuration lacks).
    """
    import warnings

    import optuna

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = optuna.importance.get_param_importances(study)
    notes = sorted({f"Optuna: {w.message}" for w in caught})
    return {k: float(v) for k, v in values.items()}, notes


# -- the report ------------------------------------------------------------------------------------
