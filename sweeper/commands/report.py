"""``sweeper report NAME``: the sweep's ablation table (mean ± std over seeds) from MLflow.

Prints the table in one format on stdout (``--format``) and always writes all three files
``<name>.csv``, ``<name>.md``, ``<name>.tex`` to ``--out`` (default ``sweeps/<name>/report/``).
Notes (files written, unfinished trials) go to stderr, so ``--format csv`` output stays pure CSV.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from typing import TYPE_CHECKING

from trainables.errors import InputError

if TYPE_CHECKING:  # mlflow and pandas load only when a report runs: `sweeper --help` stays fast
    import pandas as pd

FORMATS = ("table", "csv", "markdown", "latex")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("report", help="print a sweep's ablation table and write .csv/.md/.tex files")
    parser.add_argument("name", metavar="NAME", help="the sweep's name (its YAML `name:`)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: sqlite:///<cwd>/mlflow.db)")
    parser.add_argument("--experiment", default=None, help="look only in this MLflow experiment")
    parser.add_argument("--parent-run", default=None, metavar="RUN_ID",
                        help="report this launch of the sweep (default: the most recent one)")
    parser.add_argument("--rows", default=None, metavar="A,B",
                        help="row parameters, comma-separated; '' for one row (default: the sweep's report.rows)")
    parser.add_argument("--metrics", default=None, metavar="M1,M2",
                        help="metrics, comma-separated (default: the sweep's report.metrics)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="what to print on stdout")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="folder for <name>.csv/.md/.tex (default: sweeps/<name>/report/)")
    parser.add_argument("--finished-only", action="store_true",
                        help="leave out trials that are not FINISHED (failed, killed, still running)")
    parser.set_defaults(run=run)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def choose_columns(args: argparse.Namespace, meta: dict, df: pd.DataFrame) -> tuple[list[str], list[str], str, str]:
    """Rows and metrics from the flags, else the sweep's report section; plus where each came from."""
    report = meta.get("report") or {}
    objective = meta.get("objective") or {}
    if args.rows is not None:
        rows, where_rows = _names(args.rows), "--rows"
    else:  # report.rows, else the searched keys: one row per searched configuration
        rows, where_rows = list(report.get("rows") or meta.get("search_keys") or []), "report.rows"
    if args.metrics is not None:
        metrics, where_metrics = _names(args.metrics), "--metrics"
    elif report.get("metrics"):
        metrics, where_metrics = list(report["metrics"]), "report.metrics"
    else:  # no report section logged: the objective, else every evaluation metric
        known = df.attrs.get("metrics", [])
        target = objective.get("metric")
        metrics = [target] if target in known else [m for m in known if not m.startswith("train/")]
        where_metrics = "report.metrics"
    return rows, metrics, where_rows, where_metrics


def _write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(table: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """``<stem>.csv``, ``.md`` and ``.tex`` in ``out`` (created if needed)."""
    from sweeper import tables

    if out.exists() and not out.is_dir():
        raise InputError("--out", f"{str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, render in ((".csv", tables.to_csv), (".md", tables.to_markdown), (".tex", tables.to_latex)):
        path = out / f"{stem}{suffix}"
        _write(path, render(table))
        paths.append(path)
    return paths


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sweeper import results, tables

    meta = results.sweep_meta(args.name, args.tracking_uri, args.experiment, args.parent_run)
    # Pin the parent run found above, so a launch starting in between cannot mix two sweeps.
    df = results.load(args.name, args.tracking_uri, args.experiment, meta["parent_run_id"])
    attrs = dict(df.attrs)
    if args.finished_only:
        df = df[df["status"] == "FINISHED"].reset_index(drop=True)
        df.attrs = attrs
    if df.empty:
        raise InputError("sweep", f"sweep {args.name!r} (parent run {meta['parent_run_id']}) has no "
                                  f"{'finished ' if args.finished_only else ''}trial runs yet")
    rows, metrics, where_rows, where_metrics = choose_columns(args, meta, df)
    tables.check_columns(df, rows, metrics, where_rows, where_metrics)
    objective = meta.get("objective") or {}
    modes = {objective["metric"]: objective["mode"]} if objective.get("mode") in ("max", "min") else {}
    table = tables.ablation_table(df, rows, metrics, {m: v for m, v in modes.items() if m in metrics})

    stem = args.name.replace("/", "_").replace("\\", "_")  # a file name, whatever the sweep is called
    out = args.out if args.out is not None else Path("sweeps") / stem / "report"
    paths = write_files(table, out, stem)

    if args.format == "table":
        caption = f"{len(df)} trials, parent run {meta['parent_run_id'][:8]} ({meta['status']})"
        console = Console()
        if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
            console = Console(width=200)
        console.print(tables.to_rich(table, f"{args.name}: mean ± std over seeds", caption))
    else:
        render = {"csv": tables.to_csv, "markdown": tables.to_markdown, "latex": tables.to_latex}[args.format]
        sys.stdout.write(render(table))
    unfinished = df.loc[df["status"] != "FINISHED", "status"].value_counts()
    if len(unfinished):
        counts = ", ".join(f"{count} {status}" for status, count in unfinished.items())
        print(f"note: included {counts} trial(s); --finished-only leaves them out", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0
