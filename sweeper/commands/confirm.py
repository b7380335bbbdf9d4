"""``sweeper confirm NAME --top K --seeds S``: rerun a sweep's K best configurations on S new seeds."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "confirm", help="rerun a sweep's best configurations on new seeds (search, then confirm)"
    )
    parser.add_argument("name", help="the searched sweep (its latest launch unless --parent-run)")
    parser.add_argument(
        "--top",
        type=int,
        default=3,
        metavar="K",
        help="how many configurations, best first by the selection metric (default 3)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        metavar="S",
        help="new seeds per configuration, numbered after every seed the search used (default 3)",
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: ./mlflow.db)")
    parser.add_argument("--experiment", default=None, help="the MLflow experiment holding the sweep")
    parser.add_argument("--parent-run", default=None, metavar="RUN_ID", help="confirm this launch of NAME")
    parser.add_argument("--storage", default=None, metavar="PATH|URI", help="Ray Tune storage (default ./sweeps)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sweeper.commands.report import check_server
    from sweeper.run import confirm
    from sweeper.run.launch import launch
    from sweeper.tables import formats
    from sweeper.tables.paper import layout_table
    from sweeper.tracking import results

    check_server(args.tracking_uri)
    child, points, tags, ranking = confirm.plan(
        args.name, args.top, args.seeds, args.tracking_uri, args.experiment, args.parent_run
    )
    console = Console()
    console.print(f"confirming the top {len(points)} of {args.name} on seeds {child.seeds}:")
    for rank, point in enumerate(points, 1):
        console.print(
            f"  {rank}. {point or '(the one configuration)'}  search mean {ranking['mean'].iloc[rank - 1]:.4f}"
            f" over {int(ranking['seeds'].iloc[rank - 1])} seed(s)"
        )
    code = launch(child, storage=args.storage, console=console, points=points, parent_tags=tags)
    if code >= 128:  # stopped by a signal: its runs are closed, nothing to tabulate yet
        return code
    df = results.load(child.name, child.tracking.uri)
    done = df[df["status"] == "FINISHED"]
    if done.empty:
        print(f"sweeper: confirm sweep {child.name} finished no trial", file=sys.stderr)
        return code or 1
    done.attrs = df.attrs
    rows = [k for k in child.report_rows if k in done.columns]
    metrics = [m for m in child.report.metrics if m in done.columns]
    table = layout_table("ablation", done, rows=rows, metrics=metrics)
    console.print(
        formats.to_rich(
            table,
            f"{child.name}: test metrics, mean ± 95% CI over {len(child.seeds)} new seeds",
            f"top {len(points)} of {args.name} by {child.primary_objective.metric}",
            stat="ci",
        )
    )
    return code
