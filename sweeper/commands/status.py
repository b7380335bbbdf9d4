"""``sweeper status [NAME]``: trials by state, the best so far, time used and time left.

Read from MLflow, so it works the same for a sweep that is running (in another terminal, or on a
cluster writing to a shared store) and for one that finished. Without NAME it lists every sweep.
A multi-objective sweep has no single best: it shows the size of the Pareto front of its finished
trials and the best value of each objective, and every sweep the trials that finished unscored
(without a finite value of some objective), and those that finished after a retried failure.
The runs come from :mod:`sweeper.tracking.run_store`, which reads the store without importing MLflow: the
answer takes about a second, not the three that loading MLflow's client costs. It reads only what it
prints: each trial's state and times, the objectives' latest values and the tags below, no params,
no history. The table lists at most :data:`TABLE_ROWS` trials, the most recently started: a sweep of
10,000 trials answers in seconds (rich alone takes seconds to lay out 10,000 rows).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sweeper.commands.status_driver import driver, driver_line, recorded_tracking_uri
from sweeper.run.scoring import UNSCORED_TAG, objective_values
from sweeper.spec.references import REFERENCE_TAG
from sweeper.tracking.failure_tags import FAILURE_HISTORY_TAG
from sweeper.tracking.run_records import Keys

STATES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
# Trial rows printed past which the table shows only the most recently started ones (and says so).
TABLE_ROWS = 50
# The trial tags the summary reads (beyond those that tell trials apart, sweep_runs.TRIAL_TAGS).
READ_TAGS = frozenset({REFERENCE_TAG, FAILURE_HISTORY_TAG})


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("status", help="trials by state, best so far, time used and left")
    parser.add_argument(
        "name", metavar="NAME", nargs="?", help="one sweep (default: list every sweep); with --cluster, one job id"
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: with NAME and --storage, the one the launch recorded there; "
        "else sqlite:///<cwd>/mlflow.db)",
    )
    parser.add_argument("--experiment", default=None, help="look only in this MLflow experiment")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--cluster",
        default=None,
        metavar="URL",
        help="list the Ray Jobs of this cluster (http://HEAD:8265), or one job's status",
    )
    parser.add_argument(
        "--storage",
        default=None,
        metavar="PATH",
        help="with NAME: the storage the sweep was launched with (a folder or s3://bucket/prefix), to tell "
        "whether its driver is alive (default: the one the launch recorded, else ./sweeps)",
    )
    parser.set_defaults(run=run)


def _clock(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _objectives(tags: dict[str, str]) -> list[dict[str, str]]:
    """The sweep's objectives ``{metric, mode}``: the list tag, else the single one of older sweeps."""
    listed = json.loads(tags.get("sweeper.objectives") or "null")
    if listed:
        return [{"metric": o["metric"], "mode": o.get("mode", "max")} for o in listed]
    objective = json.loads(tags.get("sweeper.objective") or "{}")
    return [{"metric": objective.get("metric", "ood/avg_acc"), "mode": objective.get("mode", "max")}]


def front(children: list, objectives: list[dict[str, str]]) -> dict[str, Any]:
    """The Pareto front of the sweep's finished trials (references left out): its size, how many
    trials were scored, and the best trial of each objective."""
    from sweeper.tables.pareto import front_indices  # numpy: only for a multi-objective sweep

    metrics = [o["metric"] for o in objectives]
    scored: list[tuple[list[float], Any]] = [
        (values, run)
        for run in children
        if run.info.status == "FINISHED" and not run.data.tags.get(REFERENCE_TAG)
        for values in [objective_values(run.data.metrics, metrics)]
        if values is not None
    ]
    size = len(front_indices([v for v, _ in scored], [o["mode"] for o in objectives])) if scored else 0
    best: dict[str, dict[str, Any] | None] = {}
    for i, objective in enumerate(objectives):
        ranked = sorted(scored, key=lambda pair: pair[0][i], reverse=objective["mode"] == "max")
        best[objective["metric"]] = (
            {"value": ranked[0][0][i], "run_name": ranked[0][1].info.run_name, "run_id": ranked[0][1].info.run_id}
            if ranked
            else None
        )
    return {"size": size, "scored": len(scored), "best": best}


def unscored(parent, children: list, metrics: list[str]) -> int:
    """Trials that finished without a finite value of every objective: the count the driver tagged
    when it ended, else (a sweep still running) counted from the runs."""
    tagged = parent.data.tags.get(UNSCORED_TAG, "")
    if tagged.isdigit():
        return int(tagged)
    return sum(
        1
        for run in children
        if run.info.status == "FINISHED"
        and not run.data.tags.get(REFERENCE_TAG)
        and objective_values(run.data.metrics, metrics) is None
    )


def summarise(parent, children: list, now_ms: int | None = None) -> dict[str, Any]:
    """Counts by state, best objective so far (the front, for several objectives), elapsed and
    estimated remaining seconds."""
    tags = parent.data.tags
    now_ms = now_ms or int(time.time() * 1000)
    objectives = _objectives(tags)
    metric, mode = objectives[0]["metric"], objectives[0]["mode"]
    total = int(tags["sweeper.total_trials"]) if tags.get("sweeper.total_trials", "").isdigit() else None
    counts = Counter(run.info.status for run in children)
    # The best is the sweep's own: a reference method's trial (reference: [...]) is not a candidate.
    scored = [
        (run.data.metrics[metric], run)
        for run in children
        if metric in run.data.metrics and not run.data.tags.get(REFERENCE_TAG)
    ]
    best = (max if mode == "max" else min)(scored, key=lambda pair: pair[0]) if scored else None
    elapsed = ((parent.info.end_time or now_ms) - parent.info.start_time) / 1000
    finished = [run for run in children if run.info.status == "FINISHED" and run.info.end_time]
    remaining = None
    if parent.info.status != "RUNNING":
        remaining = 0.0
    elif total is not None and finished:
        mean_trial = sum((r.info.end_time - r.info.start_time) / 1000 for r in finished) / len(finished)
        parallel = max(1, counts.get("RUNNING", 0))
        left = max(0, total - counts.get("FINISHED", 0) - counts.get("FAILED", 0))
        remaining = left * mean_trial / parallel
    summary = {
        "sweep": tags.get("sweeper.sweep"),
        "parent_run_id": parent.info.run_id,
        "status": parent.info.status,
        "trials": {state: counts.get(state, 0) for state in STATES},
        "total_trials": total,
        "objective": {"metric": metric, "mode": mode},
        "best": None
        if best is None
        else {"value": best[0], "run_name": best[1].info.run_name, "run_id": best[1].info.run_id},
        "elapsed_s": elapsed,
        "remaining_s": remaining,
        "unscored_trials": unscored(parent, children, [o["metric"] for o in objectives]),
        "retried_trials": retried(children),
    }
    if len(objectives) > 1:
        summary["objectives"] = objectives
        summary["front"] = front(children, objectives)
    return summary


def retried(children: list) -> int:
    """Trials counted among FINISHED whose earlier attempt failed (Tune retried them)."""
    return sum(1 for run in children if run.info.status == "FINISHED" and run.data.tags.get(FAILURE_HISTORY_TAG))


def front_line(summary: dict[str, Any]) -> str:
    """``front: 3 of 5 scored trials; best val/acc (max) 0.8123, val/nll (min) 0.4120``"""
    found = summary["front"]
    best = ", ".join(
        f"{o['metric']} ({o['mode']}) "
        + ("-" if found["best"][o["metric"]] is None else f"{found['best'][o['metric']]['value']:.4f}")
        for o in summary["objectives"]
    )
    return f"front: {found['size']} of {found['scored']} scored trials; best {best}"


def _one(console: Console, summary: dict[str, Any], children: list) -> None:
    trials = summary["trials"]
    done = trials["FINISHED"] + trials["FAILED"]
    total = summary["total_trials"] or "?"
    best = summary["best"]
    metric = summary["objective"]["metric"]
    console.print(
        f"[bold]{summary['sweep']}[/bold] ({summary['status']}): {done}/{total} trials done; "
        + ", ".join(f"{n} {s.lower()}" for s, n in trials.items() if n)
    )
    if "front" in summary:
        console.print(front_line(summary))
        for name, found in summary["front"]["best"].items():
            if found:  # escaped: rich would read "[lipsum_ft L=8 seed=0]" as markup and print nothing
                console.print(f"  best {name}: {found['value']:.4f}  {escape('[' + str(found['run_name']) + ']')}")
    elif best:
        console.print(
            f"best {metric} ({summary['objective']['mode']}): {best['value']:.4f}  "
            f"{escape('[' + str(best['run_name']) + ']')}"
        )
    if summary["unscored_trials"]:
        console.print(
            f"[yellow]{summary['unscored_trials']} unscored[/yellow]: "
            "finished without a finite value of every objective"
        )
    if summary["retried_trials"]:
        console.print(f"{summary['retried_trials']} retried: finished after a failed attempt (sweeper.failure_history)")
    console.print(
        f"time used {_clock(summary['elapsed_s'])}, left {_clock(summary['remaining_s'])}"
        + (" (estimate)" if summary["status"] == "RUNNING" else "")
    )
    metrics = [o["metric"] for o in summary.get("objectives", [summary["objective"]])]
    table = Table("trial", "status", *metrics, "duration")
    shown = sorted(children, key=lambda r: r.info.start_time or 0)[-TABLE_ROWS:]
    if len(shown) < len(children):
        console.print(
            f"the {len(shown)} most recently started of {len(children)} trials "
            "(every trial: `sweeper report NAME`, or sweeper.tracking.results.load)"
        )
    for run in shown:
        values = [run.data.metrics.get(m) for m in metrics]
        end = run.info.end_time or int(time.time() * 1000)
        table.add_row(
            run.info.run_name or run.info.run_id,
            run.info.status,
            *["-" if value is None else f"{value:.4f}" for value in values],
            _clock((end - run.info.start_time) / 1000),
        )
    console.print(table)


def printed(parent) -> Keys:
    """What the summary and the table read of each trial: the objectives' values and READ_TAGS."""
    return Keys(
        tags=READ_TAGS, metrics=frozenset(o["metric"] for o in _objectives(parent.data.tags)), params=frozenset()
    )


def run(args: argparse.Namespace) -> int:
    if args.cluster:
        from sweeper.run import jobs

        return jobs.show_status(args.cluster, args.name, as_json=args.json)
    from sweeper.commands.report import check_server
    from sweeper.tracking import sweep_runs
    from sweeper.tracking.run_store import open_store

    if args.name and args.storage and not args.tracking_uri:  # the launch's own store, which it recorded
        args.tracking_uri = recorded_tracking_uri(args.name, args.storage)
    check_server(args.tracking_uri)
    console = Console()
    if args.name:
        store, parent = sweep_runs.resolve_parent(args.name, args.tracking_uri, args.experiment)
        children = sweep_runs.trial_runs(store, parent, printed(parent))
        summary = summarise(parent, children)
        summary["driver"] = driver(args.name, parent, args.storage)
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            _one(console, summary, children)
            console.print(
                driver_line(args.name, summary["driver"], summary["status"]),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        return 0
    store = open_store(args.tracking_uri)
    latest: dict[str, Any] = {}
    for parent in sweep_runs.sweep_parents(store):  # newest first
        latest.setdefault(parent.data.tags.get("sweeper.sweep", "?"), parent)
    summaries = [summarise(parent, sweep_runs.trial_runs(store, parent, printed(parent))) for parent in latest.values()]
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    table = Table("sweep", "status", "done/total", "running", "failed", "best", "used", "left")
    for s in summaries:
        t = s["trials"]
        if "front" in s:
            best = f"front of {s['front']['size']} ({len(s['objectives'])} objectives)"
        else:
            best = f"{s['best']['value']:.4f} ({s['objective']['metric']})" if s["best"] else "-"
        table.add_row(
            s["sweep"],
            s["status"],
            f"{t['FINISHED'] + t['FAILED']}/{s['total_trials'] or '?'}",
            str(t["RUNNING"]),
            str(t["FAILED"]),
            best,
            _clock(s["elapsed_s"]),
            _clock(s["remaining_s"]),
        )
    console.print(table if summaries else "no sweeps in this MLflow store yet")
    return 0
