"""``sweeper report NAME --layout pareto``: the non-dominated configurations of a sweep.

The metrics are ``--metrics A,B[,C]``, else the sweep's objectives when it has two or more, else
``id/acc`` and ``ood/avg_acc``. Each metric's mode is the sweep's for an objective of that name,
else ``min`` for ece / nll / loss names and ``max`` for the rest (``sweeper.tables.ablation.
default_mode``). The front is over configurations (means over seeds) and the WiSE-FT points of
their curves (:mod:`sweeper.tables.frontier`); trials that did not finish their last epoch are
left out and listed. The hypervolume is measured against ``--reference-point`` or the zero-shot
point; effective robustness against the zero-shot line, or ``--line zoo|FILE.csv``.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainables.errors import InputError

if TYPE_CHECKING:  # pandas and the tables load only when a report runs: `sweeper --help` stays fast
    import pandas as pd

    from sweeper.tables.frontier import Frontier
    from sweeper.tables.robustness_lines import Line
    from sweeper.tracking.launches import Launch

ZOO = "zoo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference-point",
        default=None,
        metavar="V1,V2",
        help="pareto: the hypervolume's reference, one value per metric (default: the zero-shot point)",
    )
    parser.add_argument(
        "--line",
        default=None,
        metavar="zoo|FILE.csv",
        help="pareto: measure effective robustness against a line fitted on logit-scaled accuracies "
        "over the zoo models' zero-shot points on the sweep's data (zoo; evaluates them) or over the "
        "(ID, OOD) points of a CSV (default: the zero-shot line through chance)",
    )


@dataclass
class ParetoFlags:
    """The pareto flags, parsed before MLflow is read."""

    reference: list[float] | None
    csv_points: list[tuple[float, float]] | None


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_reference_point(text: str | None) -> list[float] | None:
    """``V1,V2[,...]`` as floats; InputError naming ``--reference-point`` when malformed."""
    if text is None:
        return None
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise InputError("--reference-point", f"expected numbers like 0.55,0.6, not {text!r}") from None
        if not math.isfinite(value):
            raise InputError("--reference-point", f"{part.strip()!r} is not a finite number")
        values.append(value)
    return values


def refuse_flags(args: argparse.Namespace) -> None:
    """The pareto flags mean nothing to the other layouts: say so rather than ignore them."""
    for flag, value in (("--reference-point", args.reference_point), ("--line", args.line)):
        if value is not None:
            raise InputError(flag, f"only --layout pareto uses it (this is --layout {args.layout})")


def check_flags(args: argparse.Namespace) -> ParetoFlags:
    """Parse ``--reference-point`` and read a ``--line`` CSV, before anything is read from MLflow."""
    from sweeper.tables.robustness_lines import read_points_csv

    if args.metrics is not None and len(_names(args.metrics)) < 2:
        raise InputError("--metrics", f"a front needs at least two metrics, got {args.metrics!r}")
    points = None
    if args.line is not None and args.line != ZOO:
        points = read_points_csv(Path(args.line))
    return ParetoFlags(parse_reference_point(args.reference_point), points)


def choose_metrics(args: argparse.Namespace, meta: dict[str, Any], df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The front's metrics (see the module notes) and their modes."""
    from sweeper.tables.frontier import mode_of, objective_metrics

    objectives = [o for o in meta.get("objectives") or [] if isinstance(o, dict)]
    if args.metrics is not None:
        metrics, where = _names(args.metrics), "--metrics"
    else:
        metrics = objective_metrics(objectives)
        where = "objective" if len(objectives) >= 2 else "--metrics"
    if len(metrics) < 2:
        raise InputError(where, f"a front needs at least two metrics, got {', '.join(metrics)}")
    known = [m for m in df.attrs.get("metrics", []) if not m.startswith("wise/")]
    for metric in metrics:
        if metric not in df.columns:
            raise InputError(where, f"unknown metric {metric!r}; available: {', '.join(known) or '(none)'}")
    return metrics, [mode_of(m, objectives) for m in metrics]


def config_labels(config_keys: list[str], df: pd.DataFrame) -> list[str]:
    """What tells configurations apart: the method when it varies, then ``config_keys`` (the
    sweep's report rows, else its searched keys)."""
    keys = [k for k in dict.fromkeys(["method", *config_keys]) if k in df.columns and k != "seed"]
    varying = [k for k in keys if k != "method" or df[k].nunique(dropna=False) > 1]
    return varying or ["method"]


def choose_line(args: argparse.Namespace, flags: ParetoFlags, meta: dict[str, Any], df: pd.DataFrame) -> Line | None:
    """The line of ``--line``, else the zero-shot line (None, with a note, when it cannot be drawn)."""
    from sweeper.tables import zoo_points
    from sweeper.tables.frontier import default_line
    from sweeper.tables.robustness_lines import fitted_line
    from sweeper.tracking.launch_reads import sweep_file

    if flags.csv_points is not None:
        return fitted_line(flags.csv_points, str(args.line))
    spec = sweep_file(args.name, args.tracking_uri, args.experiment, meta["parent_run_id"])
    if args.line == ZOO:
        data = zoo_points.data_spec(spec)
        found = zoo_points.zoo_points(data, progress=lambda text: print(f"note: {text}", file=sys.stderr))
        for name, id_acc, ood_acc in found:
            print(f"note: zoo/{name} zero-shot: id/acc {id_acc:.4f}, ood/avg_acc {ood_acc:.4f}", file=sys.stderr)
        return fitted_line([(i, o) for _, i, o in found], "zoo: " + ", ".join(n for n, _, _ in found))
    line, why = default_line(df, (spec or {}).get("data"))
    if line is None:
        print(f"note: no effective robustness: {why}; give --line FILE.csv", file=sys.stderr)
    return line


def front_table(result: Frontier) -> pd.DataFrame:
    """The front as the renderers take it, with display names: a test metric beside validation
    objectives reads ``id/acc (test)``, effective robustness ``eff. robustness``."""
    from sweeper.tables.frontier import ROBUSTNESS

    table = result.front.copy()
    names = dict(table.attrs.get("names", {}))
    for metric in table.attrs.get("metrics", []):
        if metric not in result.metrics and metric != ROBUSTNESS:
            names[metric] = f"{metric} (test)"
    names[ROBUSTNESS] = "eff. robustness"
    table.attrs = {**result.front.attrs, "names": names}
    return table


def run_pareto(
    args: argparse.Namespace,
    flags: ParetoFlags,
    meta: dict[str, Any],
    df: pd.DataFrame,
    out: Path,
    stem: str,
    config_keys: list[str],
    launch: Launch | None = None,
) -> list[Path]:
    """Print the front and its notes, write ``<stem>.csv/.md/.tex/.html`` and ``<stem>_summary.txt``."""
    from rich.console import Console

    from sweeper.commands.report_files import write_files
    from sweeper.run.files import write_text_atomic
    from sweeper.tables import formats
    from sweeper.tables.completion import complete_mask
    from sweeper.tables.frontier import frontier, summary_lines
    from sweeper.tracking.launch_reads import add_epochs_run

    metrics, modes = choose_metrics(args, meta, df)
    if flags.reference is not None and len(flags.reference) != len(metrics):
        raise InputError(
            "--reference-point", f"{len(flags.reference)} values for {len(metrics)} metrics ({', '.join(metrics)})"
        )
    df = add_epochs_run(df.copy(), args.tracking_uri, launch)
    labels = config_labels(config_keys, df)
    line = choose_line(args, flags, meta, df[complete_mask(df)])
    result = frontier(df, metrics, modes, labels, flags.reference, line)
    if any(o.get("oracle") for o in meta.get("objectives") or [] if isinstance(o, dict)):
        result.notes.append("oracle selection: the sweep selected on a test metric")
    table = front_table(result)
    notes = summary_lines(result, args.precision, args.stat)
    paths = write_files(table, out, stem, args.stat, args.precision)
    summary = out / f"{stem}_summary.txt"
    write_text_atomic(summary, "\n".join(notes) + "\n")
    spread = "std" if args.stat == "std" else "95% CI"
    if args.format == "table":
        console = Console()
        if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
            console = Console(width=200)
        caption = f"{len(df)} trials, parent run {meta['parent_run_id'][:8]} ({meta['status']})"
        title = f"{args.name} pareto: non-dominated configurations, mean ± {spread} over seeds"
        console.print(formats.to_rich(table, title, caption, stat=args.stat, precision=args.precision))
        for line_text in notes:
            console.print(line_text, highlight=False, markup=False)
    else:
        sys.stdout.write(formats.render(table, args.format, args.stat, args.precision))
        for line_text in notes:
            print(f"note: {line_text}", file=sys.stderr)
    return [*paths, summary]
