"""``sweeper report NAME``: the sweep's tables (mean ± std or 95% CI over seeds) from MLflow.

``--layout`` picks the table: ``ablation`` (rows x metrics, the default), the paper layouts
``domains``, ``compat`` and ``wise`` (see :mod:`sweeper.tables.paper`), ``sessions`` (a continual
sweep's rows x sessions, :mod:`sweeper.tables.sessions`), or ``pareto``: the front of the sweep's
objectives with its WiSE-FT points and hypervolume (:mod:`sweeper.commands.report_pareto`).
Prints the table in one format on stdout (``--format``) and always writes ``<stem>.csv``, ``.md``,
``.tex`` and ``.html`` to ``--out`` (default ``sweeps/<name>/report/``; the stem is the sweep's name, plus ``_<layout>``
for a paper layout). ``--html DIR`` also writes the full HTML report (``dashboards.report``).
Notes (files written, unfinished trials) go to stderr, so ``--format csv`` output stays pure CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sweeper.commands import report_pareto
from sweeper.commands.report_files import write_files, write_html_report
from trainables.errors import InputError

if TYPE_CHECKING:  # mlflow and pandas load only when a report runs: `sweeper --help` stays fast
    import pandas as pd

FORMATS = ("table", "csv", "markdown", "latex", "html")
# sweeper.tables.paper.LAYOUTS, sessions and pareto (not imported: keeps --help fast)
LAYOUTS = ("ablation", "domains", "compat", "wise", "sessions", "pareto")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report", help="print a sweep's ablation or paper table and write .csv/.md/.tex/.html files"
    )
    parser.add_argument("name", metavar="NAME", help="the sweep's name (its YAML `name:`)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: sqlite:///<cwd>/mlflow.db)")
    parser.add_argument("--experiment", default=None, help="look only in this MLflow experiment")
    parser.add_argument(
        "--parent-run",
        default=None,
        metavar="RUN_ID",
        help="report this launch of the sweep (default: the most recent one)",
    )
    parser.add_argument(
        "--rows",
        default=None,
        metavar="A,B",
        help="row parameters, comma-separated; '' for one row (default: the sweep's "
        "report.rows, with method first for --layout domains/compat)",
    )
    parser.add_argument(
        "--metrics",
        default=None,
        metavar="M1,M2",
        help="metrics, comma-separated (default: the sweep's report.metrics; for pareto its "
        "objectives, else id/acc,ood/avg_acc; for sessions the per-session quantities, default "
        "target_gain,forgetting)",
    )
    parser.add_argument(
        "--columns",
        default=None,
        metavar="A,B",
        help="parameters spread over column groups, e.g. --rows method --columns L "
        "(wise: default every varying method/config key; '' pools them)",
    )
    parser.add_argument(
        "--layout",
        default="ablation",
        metavar="|".join(LAYOUTS),
        help="ablation (rows x --metrics, default); domains (ID, each OOD domain, OOD avg, "
        "ID ECE); compat (v1, v2, HM); wise (WiSE-FT alpha x ID/OOD acc); sessions (a continual "
        "sweep's metrics per session, then its summary); pareto (the front of the objectives, with "
        "WiSE-FT points, hypervolume and effective robustness)",
    )
    parser.add_argument(
        "--stat",
        choices=("std", "ci"),
        default="std",
        help="spread shown after ±: sample std (default) or 95%% t-interval half-width",
    )
    parser.add_argument(
        "--delta",
        default=None,
        metavar="KEY=VALUE",
        help="also show each mean minus that of the row with KEY=VALUE (e.g. method=ft) "
        "and the same other parameters; several as K1=V1,K2=V2; reference=NAME "
        "against a reference row (default: the sweep's report.delta)",
    )
    parser.add_argument("--precision", type=int, default=3, metavar="N", help="decimals shown (default 3)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="what to print on stdout")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for <stem>.csv/.md/.tex/.html (default: sweeps/<name>/report/)",
    )
    parser.add_argument(
        "--html",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the sweep's HTML report (tables and plots) into DIR",
    )
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="leave out trials that are not FINISHED (failed, killed, still running)",
    )
    report_pareto.add_arguments(parser)
    parser.set_defaults(run=run)


def check_server(uri: str | None) -> None:
    """An http(s) ``--tracking-uri`` must answer its /health check (3 s); MLflow's own client retries a
    dead server for minutes before it gives up. Other URIs are checked by ``sweeper.tracking.results``."""
    if uri is not None and uri.lower().startswith(("http://", "https://")):
        from sweeper.tracking.uri import check_tracking_uri

        check_tracking_uri(uri, "--tracking-uri")


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_delta(text: str | None) -> dict[str, str] | None:
    """``KEY=VALUE[,KEY=VALUE]`` as a dict; ``InputError("--delta")`` when malformed."""
    if text is None:
        return None
    pairs = {}
    for part in _names(text):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InputError("--delta", f"expected KEY=VALUE (e.g. method=ft), not {part!r}")
        pairs[key.strip()] = value.strip()
    if not pairs:
        raise InputError("--delta", "expected KEY=VALUE (e.g. method=ft)")
    return pairs


def config_keys(meta: dict) -> list[str]:
    """The parameters that tell configurations apart: report.rows, else the searched keys."""
    report = meta.get("report") or {}
    return list(report.get("rows") or meta.get("search_keys") or [])


def choose_columns(args: argparse.Namespace, meta: dict, df: pd.DataFrame) -> tuple[list[str], list[str], str, str]:
    """Rows and metrics from the flags, else the sweep's report section; plus where each came from."""
    report = meta.get("report") or {}
    objective = meta.get("objective") or {}
    if args.rows is not None:
        rows, where_rows = _names(args.rows), "--rows"
    else:  # report.rows, else the searched keys: one row per searched configuration
        rows, where_rows = config_keys(meta), "report.rows"
    if args.metrics is not None:
        metrics, where_metrics = _names(args.metrics), "--metrics"
    elif report.get("metrics"):
        metrics, where_metrics = list(report["metrics"]), "report.metrics"
    else:  # no report section logged: the objective, else every evaluation metric
        known = df.attrs.get("metrics", [])
        target = objective.get("metric")
        metrics = (
            [target]
            if isinstance(target, str) and target in known
            else [m for m in known if not m.startswith("train/")]
        )
        where_metrics = "report.metrics"
    return rows, metrics, where_rows, where_metrics


def build_table(args: argparse.Namespace, meta: dict, df: pd.DataFrame) -> pd.DataFrame:
    """The table ``--layout`` asks for, with the defaults of each layout filled in from ``meta``."""
    from sweeper.tables import paper

    layout = args.layout
    if layout not in LAYOUTS:
        raise InputError("--layout", f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    delta = parse_delta(args.delta) if args.delta is not None else (meta.get("report") or {}).get("delta")
    columns = _names(args.columns) if args.columns is not None else None
    objective = meta.get("objective") or {}
    modes = {objective["metric"]: objective["mode"]} if objective.get("mode") in ("max", "min") else {}
    where = {"rows": "--rows", "metrics": "--metrics", "columns": "--columns", "delta": "--delta", "layout": "--layout"}
    if layout == "ablation":
        rows, metrics, where["rows"], where["metrics"] = choose_columns(args, meta, df)
        modes = {m: v for m, v in modes.items() if m in metrics}
        return paper.layout_table(
            layout,
            df,
            rows=rows,
            metrics=metrics,
            columns=columns,
            delta=delta,
            modes=modes,
            where=where,
            reference_order=meta.get("references") or (),
        )
    chosen_metrics = _names(args.metrics) if args.metrics is not None else None
    chosen_rows: list[str] | None
    if layout == "wise":
        chosen_rows = _names(args.rows) if args.rows is not None else None
        if columns is None:  # keep methods and configurations apart: split by every such key that varies
            keys = dict.fromkeys(["method", *config_keys(meta)])
            columns = [k for k in keys if k in df.columns and k != paper.WISE_ALPHA and df[k].nunique(dropna=False) > 1]
    elif args.rows is not None:
        chosen_rows = _names(args.rows)
    else:  # the method, then whatever else tells configurations apart (and was logged)
        chosen_rows = ["method", *(k for k in config_keys(meta) if k != "method" and k in df.columns)]
    if layout == "sessions":
        from sweeper.tables.sessions import sessions_table

        return sessions_table(df, chosen_rows or [], chosen_metrics, columns=columns, delta=delta, where=where)
    modes = {m: v for m, v in modes.items() if m in df.columns}
    return paper.layout_table(
        layout, df, rows=chosen_rows, metrics=chosen_metrics, columns=columns, delta=delta, modes=modes, where=where
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sweeper.tables import formats
    from sweeper.tracking import results

    if not 0 <= args.precision <= 12:
        raise InputError("--precision", f"must be between 0 and 12, not {args.precision}")
    if args.layout not in LAYOUTS:  # before touching MLflow
        raise InputError("--layout", f"unknown layout {args.layout!r}; choose one of {', '.join(LAYOUTS)}")
    if args.layout != "pareto":
        report_pareto.refuse_flags(args)
    pareto = report_pareto.check_flags(args) if args.layout == "pareto" else None
    check_server(args.tracking_uri)
    # The trial runs are read once, for the table and for --html: a launch starting in between
    # cannot mix two sweeps, and a sweep of 10,000 trials is not read twice.
    launch = results.read_launch(args.name, args.tracking_uri, args.experiment, args.parent_run)
    meta = {**results.meta_of(launch.client, launch.parent), "sweep": args.name}
    df = results.frame_of(launch)
    attrs = dict(df.attrs)
    if args.finished_only:
        df = df[df["status"] == "FINISHED"].reset_index(drop=True)
        df.attrs = attrs
    if df.empty:
        raise InputError(
            "sweep",
            f"sweep {args.name!r} (parent run {meta['parent_run_id']}) has no "
            f"{'finished ' if args.finished_only else ''}trial runs yet",
        )
    stem = args.name.replace("/", "_").replace("\\", "_")  # a file name, whatever the sweep is called
    out = args.out if args.out is not None else Path("sweeps") / stem / "report"
    if pareto is not None:
        paths = report_pareto.run_pareto(args, pareto, meta, df, out, f"{stem}_pareto", config_keys(meta), launch)
        print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
        if args.html is not None:
            print(f"wrote {write_html_report(args, launch)}", file=sys.stderr)
        return 0
    table = build_table(args, meta, df)
    paths = write_files(
        table, out, stem if args.layout == "ablation" else f"{stem}_{args.layout}", args.stat, args.precision
    )

    if args.format == "table":
        spread = "std" if args.stat == "std" else "95% CI"
        layout = "" if args.layout == "ablation" else f" {args.layout}"
        caption = f"{len(df)} trials, parent run {meta['parent_run_id'][:8]} ({meta['status']})"
        objective = meta.get("objective") or {}
        if objective.get("oracle"):
            caption += f"; oracle selection on the test metric {objective.get('metric')}"
        console = Console()
        if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
            console = Console(width=200)
        console.print(
            formats.to_rich(
                table,
                f"{args.name}{layout}: mean ± {spread} over seeds",
                caption,
                stat=args.stat,
                precision=args.precision,
            )
        )
    else:
        sys.stdout.write(formats.render(table, args.format, args.stat, args.precision))
        if (meta.get("objective") or {}).get("oracle"):
            print(
                f"note: oracle selection: trials were selected on the test metric {meta['objective'].get('metric')}",
                file=sys.stderr,
            )
    unfinished = df.loc[df["status"] != "FINISHED", "status"].value_counts()
    if len(unfinished):
        counts = ", ".join(f"{count} {status}" for status, count in unfinished.items())
        print(f"note: included {counts} trial(s); --finished-only leaves them out", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    if args.html is not None:
        print(f"wrote {write_html_report(args, launch)}", file=sys.stderr)
    return 0
