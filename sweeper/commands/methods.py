"""``sweeper methods``: every registered method with its parameters, defaults, ranges and paper."""

from __future__ import annotations

import argparse
import json
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from rich.console import Console
from rich.table import Table

from trainables import registry
from trainables.errors import InputError
from trainables.recipes import FAMILIES, recipe

_BOUNDS = ((Ge, "ge", ">="), (Gt, "gt", ">"), (Le, "le", "<="), (Lt, "lt", "<"))


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("methods", help="list the fine-tuning methods and their parameters")
    parser.add_argument("name", nargs="?", help="only this method (shell pattern, e.g. 'lipsum*')")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(run=run)


def _parameter(info) -> dict[str, Any]:
    bounds = {}
    for meta in info.metadata:
        for bound_type, key, _ in _BOUNDS:
            if isinstance(meta, bound_type):
                bounds[key] = getattr(meta, key)
    annotation = info.annotation
    if get_origin(annotation) is Literal:
        bounds["choices"] = list(get_args(annotation))
        kind = "choice"
    else:
        kind = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
    return {"type": kind, "default": info.default, "description": info.description or "", **bounds}


def describe(pattern: str = "*") -> dict[str, dict[str, Any]]:
    """Per method: paper, summary (first docstring line), trains, interpolable, the method-specific
    metric families it logs, its parameters, and its train
    recipe for each model family (``tiny``: the shipped zoo; ``clip``: real open_clip weights)."""
    out = {}
    for name in registry.names(pattern):
        declared = registry.params(name)
        out[name] = {
            "paper": declared.paper,
            "summary": (declared.__doc__ or "").strip().splitlines()[0] if declared.__doc__ else "",
            "trains": declared.trains,
            # posthoc.wise applies (weights in the zero-shot space), and the metric families it logs
            "interpolable": declared.interpolable,
            "logs": list(declared.logs),
            "parameters": {field: _parameter(info) for field, info in declared.model_fields.items()},
            "recipes": {family: recipe(declared, family) for family in FAMILIES} if declared.trains else {},
        }
    return out


def _range(parameter: dict[str, Any]) -> str:
    if "choices" in parameter:
        return " | ".join(map(str, parameter["choices"]))
    return ", ".join(f"{symbol} {parameter[key]}" for _, key, symbol in _BOUNDS if key in parameter)


def _recipe_table(name: str, recipes: dict[str, dict[str, Any]]) -> Table:
    """Train key x model family: what a trial of ``name`` gets for each key the file leaves unset."""
    table = Table(title=f"{name}: train recipe by model family (the sweep file's train keys win)", title_justify="left")
    table.add_column("train key")
    for family in recipes:
        table.add_column(f"{family} ({'zoo/*' if family == 'tiny' else 'open_clip'})")
    keys = dict.fromkeys(k for values in recipes.values() for k in values)
    for key in keys:
        table.add_row(key, *(_short(values.get(key)) for values in recipes.values()))
    return table


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return "-" if value is None else str(value)


def run(args: argparse.Namespace) -> int:
    data = describe(args.name or "*")
    if not data:
        raise InputError("NAME", f"no method matches {args.name!r}; known: {', '.join(registry.names())}")
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    console = Console()
    for name, method in data.items():
        extras = [
            "posthoc.wise: yes" if method["interpolable"] else "posthoc.wise: no",
            *(["logs " + ", ".join(f"{family}*" for family in method["logs"])] if method["logs"] else []),
        ]
        table = Table(
            title=f"[bold]{name}[/bold]: {method['summary']}",
            caption=method["paper"] + "\n" + "; ".join(extras),
            title_justify="left",
            caption_justify="left",
        )
        for column in ("parameter", "type", "default", "range", "description"):
            table.add_column(column)
        for field, parameter in method["parameters"].items():
            table.add_row(
                field, parameter["type"], repr(parameter["default"]), _range(parameter), parameter["description"]
            )
        if not method["parameters"]:
            table.add_row("-", "", "", "", "no hyperparameters")
        console.print(table)
        if method["recipes"]:
            console.print(_recipe_table(name, method["recipes"]))
    return 0
