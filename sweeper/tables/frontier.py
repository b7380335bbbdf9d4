"""The sweep's Pareto front over configurations, with the points its WiSE-FT curves add.

Candidates are means over seeds, one per configuration (its trained model) and one per
(configuration, alpha) of a WiSE-FT curve (``wise/<alpha>/<metric>``). The front is
:func:`sweeper.tables.pareto.pareto` over those means (the one front computation), shown with the
seed std of every metric, the test metrics ``id/acc`` and ``ood/avg_acc`` beside validation
objectives, and each point's effective robustness against a line
(:mod:`sweeper.tables.robustness_lines`). Trials that did not finish their last epoch are left out
(:mod:`sweeper.tables.completion`). The hypervolume is measured against a reference point, by
default the zero-shot point.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sweeper.tables.ablation import ablation_table, default_mode
from sweeper.tables.completion import complete_mask, unfinished
from sweeper.tables.pareto import hypervolume, pareto
from sweeper.tables.robustness_lines import Line
from trainables.errors import InputError

POINT = "point"  # the label column: "trained" or "WiSE α=<alpha>"
ALPHA = "wise_alpha"
TRAINED = "trained"
ROBUSTNESS = "effective_robustness"
TEST_METRICS = ("id/acc", "ood/avg_acc")
ZEROSHOT_PREFIX = "zeroshot/"
_WISE = re.compile(r"^wise/([0-9.]+)/(.+)$")


@dataclass
class Frontier:
    """A front and what it was measured against; ``table`` holds every candidate's statistics
    (an ``ablation_table``: ``<m> mean``/``std``/``ci`` and ``n``), ``front`` the rows on it."""

    metrics: list[str]
    modes: list[str]
    labels: list[str]
    table: pd.DataFrame
    front: pd.DataFrame
    excluded: pd.DataFrame
    reference: list[float] | None = None
    reference_source: str = ""
    hypervolume: float = math.nan
    hypervolume_trained: float = math.nan
    line: Line | None = None
    notes: list[str] = field(default_factory=list)
    candidates: int = 0  # rows of ``table`` the front was chosen from (repeats of a trained point left out)


def wise_label(alpha: str) -> str:
    return f"WiSE α={alpha}"


def wise_alphas(df: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """The alphas (as spelled in the columns) with a ``wise/<alpha>/<m>`` column for every metric."""
    found: dict[str, set[str]] = {}
    for column in df.columns:
        match = _WISE.match(str(column))
        if match:
            found.setdefault(match.group(1), set()).add(match.group(2))
    return sorted((a for a, names in found.items() if set(metrics) <= names), key=float)


def mode_of(metric: str, objectives: Sequence[dict]) -> str:
    """The sweep's mode for an objective metric, else max for accuracies, min for ece/nll/loss."""
    for objective in objectives:
        if objective.get("metric") == metric and objective.get("mode") in ("max", "min"):
            return str(objective["mode"])
    return default_mode(metric)


def objective_metrics(objectives: Sequence[dict]) -> list[str]:
    """The front's default metrics: the sweep's objectives when there are two or more, else the
    ID-OOD trade-off (``id/acc`` and ``ood/avg_acc``)."""
    named = [str(o["metric"]) for o in objectives if isinstance(o, dict) and o.get("metric")]
    return named if len(named) >= 2 else list(TEST_METRICS)


def default_line(df: pd.DataFrame, data: dict | None) -> tuple[Line | None, str]:
    """The zero-shot line through chance (``1/K`` for the classes of ``data``, the sweep's data
    spec) and the zero-shot test point of ``df``; None and the reason when either is unknown."""
    from sweeper.tables.robustness_lines import zero_shot_line
    from sweeper.tables.zoo_points import chance_of

    point, source = zero_shot_point(df, TEST_METRICS)
    chance = chance_of(data) if isinstance(data, dict) else None
    if point is None:
        return None, source
    if chance is None:
        return None, "the sweep file (its classes) is not on the parent run"
    return zero_shot_line(point[0], point[1], chance), ""


def candidate_points(
    df: pd.DataFrame, metrics: Sequence[str], labels: Sequence[str], line: Line | None = None
) -> pd.DataFrame:
    """One row per trial and candidate: its trained model, and each WiSE alpha where the trial
    logged every metric. Columns: ``labels``, ``seed``, ``point``, ``wise_alpha``, the metrics, the
    test metrics and (with ``line``) ``effective_robustness`` on the test metrics."""
    shown = list(dict.fromkeys([*metrics, *(m for m in TEST_METRICS if m in df.columns or _any_wise(df, m))]))
    keep = [c for c in dict.fromkeys([*labels, "seed"]) if c in df.columns]
    parts: list[pd.DataFrame] = []
    sources: list[tuple[str, float, str]] = [(TRAINED, math.nan, "{}")]
    sources += [(wise_label(a), float(a), f"wise/{a}/{{}}") for a in wise_alphas(df, metrics)]
    for point, alpha, pattern in sources:
        part = df[keep].copy()
        part[POINT], part[ALPHA] = point, alpha
        for metric in shown:
            name = pattern.format(metric)
            part[metric] = df[name].astype("float64") if name in df.columns else math.nan
        if point != TRAINED:  # a trial whose method has no curve has no point here
            part = part[part[list(metrics)].notna().all(axis=1)]
        parts.append(part)
    points = pd.concat(parts, ignore_index=True)
    if line is not None and set(TEST_METRICS) <= set(points.columns):
        points[ROBUSTNESS] = [
            line.effective(float(i), float(o)) for i, o in zip(points["id/acc"], points["ood/avg_acc"], strict=True)
        ]
    points.attrs = {
        "params": [*keep, POINT, ALPHA],
        "metrics": [c for c in points.columns if c in {*shown, ROBUSTNESS}],
    }
    return points


def _any_wise(df: pd.DataFrame, metric: str) -> bool:
    return any(str(c).startswith("wise/") and str(c).endswith("/" + metric) for c in df.columns)


ROBUSTNESS_METRICS = ("robustness/effective",)  # both robustness/effective and ..._val


def zero_shot_point(df: pd.DataFrame, metrics: Sequence[str]) -> tuple[list[float] | None, str]:
    """The mean of ``zeroshot/<m>`` over the trials (each logs its own zero-shot point), else the
    mean of ``<m>`` over the ``zeroshot`` method's trials; None when a metric has neither."""
    point, sources = [], set()
    zero = df[df["method"] == "zeroshot"] if "method" in df.columns else df.iloc[0:0]
    for metric in metrics:
        own = f"{ZEROSHOT_PREFIX}{metric}"
        if metric.startswith(ROBUSTNESS_METRICS):  # zero-shot is on its own line by definition
            point.append(0.0)
            sources.add("0 for effective robustness")
        elif own in df.columns and df[own].notna().any():
            point.append(float(df[own].mean()))
            sources.add(f"mean of {ZEROSHOT_PREFIX}<metric> over {int(df[own].notna().sum())} trials")
        elif metric in zero.columns and zero[metric].notna().any():
            point.append(float(zero[metric].mean()))
            sources.add(f"mean over {int(zero[metric].notna().sum())} zeroshot trials")
        else:
            return None, f"no {own} logged"
    return point, "zero-shot point (" + "; ".join(sorted(sources)) + ")"


def frontier(
    df: pd.DataFrame,
    metrics: Sequence[str],
    modes: Sequence[str] | None = None,
    labels: Sequence[str] = ("method",),
    reference: Sequence[float] | None = None,
    line: Line | None = None,
) -> Frontier:
    """The front of ``metrics`` over configurations (``labels``) and their WiSE-FT points, from a
    ``results.load`` frame; unfinished trials are left out and listed in ``excluded``.

    ``reference`` (default: the zero-shot point) bounds the hypervolume; ``line`` adds each point's
    effective robustness on ``id/acc`` and ``ood/avg_acc``."""
    metrics, labels = list(metrics), [c for c in labels if c in df.columns]
    modes = list(modes) if modes is not None else [default_mode(m) for m in metrics]
    if len(metrics) < 2:
        raise InputError("metrics", f"a front needs at least two metrics, got {', '.join(metrics) or 'none'}")
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise InputError("metrics", f"no metric {missing[0]!r} in the results")
    if reference is not None and len(reference) != len(metrics):
        raise InputError("reference", f"{len(reference)} values for {len(metrics)} metrics")
    df, labels = _references_apart(df, labels)
    complete = df[complete_mask(df)]
    excluded = unfinished(df, labels)
    points = candidate_points(complete, metrics, labels, line)
    points = points[points[metrics].notna().all(axis=1)]
    if points.empty:
        raise InputError("sweep", "no finished trial logged " + " and ".join(metrics))
    shown = points.attrs["metrics"]
    chosen = {m: mode for m, mode in zip(metrics, modes, strict=True)}
    table = ablation_table(points, [*labels, POINT], shown, modes={**chosen, ROBUSTNESS: "max"})
    table.insert(len(labels) + 1, ALPHA, [_alpha_of(p) for p in table[POINT]])
    candidates = table[~_repeats_trained(table, labels, [f"{m} mean" for m in metrics])]
    front = pareto(candidates, [f"{m} mean" for m in metrics], modes)
    best_first = front[f"{metrics[0]} mean"] * (-1 if modes[0] == "max" else 1)
    front = front.iloc[np.argsort(best_first.to_numpy(), kind="stable")]
    front.attrs = dict(table.attrs)
    result = Frontier(metrics, modes, labels, table, front, excluded, line=line, candidates=len(candidates))
    if reference is not None:
        result.reference, result.reference_source = [float(v) for v in reference], "--reference-point"
    else:
        result.reference, result.reference_source = zero_shot_point(complete, metrics)
    if result.reference is not None:
        means = table[[f"{m} mean" for m in metrics]].to_numpy(dtype=float)
        trained = (table[POINT] == TRAINED).to_numpy()
        result.hypervolume = hypervolume(means, modes, result.reference)
        result.hypervolume_trained = hypervolume(means[trained], modes, result.reference)
    return result


def _repeats_trained(table: pd.DataFrame, labels: list[str], columns: list[str]) -> np.ndarray:
    """WiSE rows equal to their configuration's trained point: a curve's alpha = 1 is the trained
    model itself (except wise_ft's, whose trained model sits at its own alpha), and the same point
    twice would crowd the front. They stay in the table, where the figure draws whole curves."""
    keys = [tuple(map(str, row)) for row in table[labels].itertuples(index=False)] if labels else [()] * len(table)
    values = table[columns].to_numpy(dtype=float)
    trained = (table[POINT] == TRAINED).to_numpy()
    trained_at = {key: values[i] for i, key in enumerate(keys) if trained[i]}
    return np.array(
        [
            not trained[i] and key in trained_at and bool((values[i] == trained_at[key]).all())
            for i, key in enumerate(keys)
        ],
        dtype=bool,
    )


def _references_apart(df: pd.DataFrame, labels: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """A reference trial (``reference: [...]`` of the sweep file) is its own configuration, at its
    method's defaults: its method reads ``ft (reference)``, and the method becomes a label."""
    if "reference" not in df.columns or "method" not in df.columns:
        return df, labels
    marked = df["reference"].notna() & (df["reference"].astype(str) != "")
    if not marked.any():
        return df, labels
    out = df.copy()
    out["method"] = out["method"].astype("object")
    out.loc[marked, "method"] = out.loc[marked, "method"].astype(str) + " (reference)"
    return out, labels if "method" in labels else ["method", *labels]


def _alpha_of(point: str) -> float:
    return float(point.removeprefix(wise_label(""))) if point != TRAINED else math.nan


def summary_lines(result: Frontier, precision: int = 3, stat: str = "std") -> list[str]:
    """The notes printed with the front: its size, the reference point, the hypervolume, the line
    and the trials left out."""
    p = precision
    wise = int((result.front[POINT] != TRAINED).sum())
    spread = "sample std over seeds" if stat == "std" else "95% t-interval half-width over seeds"
    candidates = result.candidates or len(result.table)
    lines = [
        f"front of {' x '.join(f'{m} ({mode})' for m, mode in zip(result.metrics, result.modes, strict=True))}: "
        f"{len(result.front)} of {candidates} candidates ({wise} from WiSE-FT curves); mean ± {spread}"
    ]
    if result.reference is None:
        lines.append(f"hypervolume: not computed ({result.reference_source}; give --reference-point)")
    else:
        ref = ", ".join(f"{v:.{p + 1}f}" for v in result.reference)
        lines.append(f"reference point: ({ref}), the {result.reference_source}")
        text = f"hypervolume: {result.hypervolume:.{p + 2}f}"
        if not math.isclose(result.hypervolume, result.hypervolume_trained):
            text += f" (trained models alone: {result.hypervolume_trained:.{p + 2}f}; the WiSE-FT points add the rest)"
        lines.append(text)
    if result.line is not None:
        lines.append(f"effective robustness against the {result.line.describe()}")
    if len(result.excluded):
        lines.append(f"left out of the front: {len(result.excluded)} trial(s) that did not finish their last epoch:")
        for _, row in result.excluded.iterrows():
            labels = ", ".join(f"{k}={row[k]}" for k in result.labels if k in row and not pd.isna(row[k]))
            seed = f" seed={row['seed']}" if "seed" in row and not pd.isna(row["seed"]) else ""
            lines.append(f"  {row.get('trial_id', '?')}: {labels}{seed}: {row['reason']}")
    lines += result.notes
    return lines
