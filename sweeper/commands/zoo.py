"""``sweeper zoo show`` and ``sweeper zoo build``: the shipped tiny CLIP models."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from trainables.errors import InputError
from trainables.models import zoo


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("zoo", help="show or rebuild the tiny CLIP zoo")
    actions = parser.add_subparsers(dest="zoo_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="config, file size and zero-shot accuracy of each model")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(run=run_show)
    build = actions.add_parser("build", help="pretrain the zoo models again from their recipes")
    build.add_argument("--model", action="append", choices=zoo.names(), help="only this model (repeatable)")
    build.add_argument("--out", type=Path, default=None, help="write here instead of the package's zoo folder")
    build.set_defaults(run=run_build)


def summaries() -> dict[str, dict]:
    """Per model: architecture, file size and the zero-shot table from its card."""
    out = {}
    for name in zoo.names():
        card = zoo.read_card(name)
        out[name] = {
            "config": card["architecture"],
            "parameters": card["parameters"],
            "file_size_bytes": zoo.weights_path(name).stat().st_size,
            "zero_shot": card["evaluation"]["zero_shot"],
            "tasks": card["evaluation"]["tasks"],
            "pretraining": {"steps": card["recipe"]["steps"], "wall_time_s": card["wall_time_s"]},
        }
    return out


def run_show(args: argparse.Namespace) -> int:
    data = summaries()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    domains = list(next(iter(data.values()))["zero_shot"])
    tasks = list(next(iter(data.values()))["tasks"])
    table = Table(title="Sweeper tiny CLIP zoo: zero-shot top-1 accuracy (shapes test splits)")
    for column in ["model", "vision (w/L/patch)", "params", "MB", *domains, *[f"zs/{t}" for t in tasks]]:
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, row in data.items():
        vision = row["config"]["vision_cfg"]
        table.add_row(
            name,
            f"{vision['width']}/{vision['layers']}/{vision['patch_size']}",
            f"{row['parameters'] / 1e6:.2f}M",
            f"{row['file_size_bytes'] / 1e6:.1f}",
            *[f"{row['zero_shot'][d]:.3f}" for d in domains],
            *[f"{row['tasks'][t]:.3f}" for t in tasks],
        )
    console = Console()
    if not console.is_terminal:  # pipes and CI logs: don't squeeze the table into 80 columns
        console = Console(width=160)
    console.print(table)
    return 0


def run_build(args: argparse.Namespace) -> int:
    from trainables.models.zoo.card import build  # heavy imports only when building

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise InputError("--out", f"{str(args.out)!r} exists and is not a folder")
    console = Console()
    total_start = time.perf_counter()
    for name in args.model or zoo.names():
        steps = zoo.RECIPES[name].steps
        columns = [
            TextColumn(f"[bold]{name}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(name, total=steps, loss=float("nan"))

            def on_step(
                step: int, loss: float, _model: object, task: TaskID = task, name: str = name, steps: int = steps
            ) -> None:
                progress.update(task, completed=step + 1, loss=loss)
                if not console.is_terminal and (step + 1) % max(1, steps // 10) == 0:
                    # Logs and CI get a line every tenth of the run instead of a live bar.
                    console.print(f"{name}: step {step + 1}/{steps}, loss {loss:.3f}")

            card = build(name, args.out, on_step)
        accs = ", ".join(f"{d} {a:.3f}" for d, a in card["evaluation"]["zero_shot"].items())
        console.print(f"{name}: pretrained in {card['wall_time_s']:.0f} s; zero-shot {accs}")
    console.print(f"zoo build wall time: {time.perf_counter() - total_start:.0f} s")
    return 0
