"""The sweep file: YAML -> a validated :class:`SweepSpec`, or one :class:`InputError` naming the field.

``load(path)`` parses with a safe loader into strict pydantic models (unknown keys are errors) and
then checks everything that can be checked before any compute: the method and its parameter
values (against the model's text context length, read from its config without loading weights),
the data domains, the search space, metric names and the tracking URI. Every error reads
``FILE: FIELD.PATH: one sentence`` (see design.md section 7).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from sweeper.spec import checks
from sweeper.spec.schema import SweepSpec
from sweeper.spec.sections import (
    DataSpec,
    ModelSpec,
    ObjectiveSpec,
    PosthocSpec,
    ReportSpec,
    ResourcesSpec,
    SchedulerSpec,
    SearchDim,
    TrackingSpec,
    TrainSpec,
    WiseSpec,
)
from trainables.errors import InputError


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads 1e-4 as a float (YAML 1.2), not a string."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
            except TypeError:
                pass  # an unhashable key: SafeLoader reports it
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_yaml(path: Path) -> Any:
    """The parsed content of a sweep file (safe loader); InputError naming the file and line otherwise."""
    if not path.exists():
        raise InputError(str(path), "sweep file does not exist")
    if not path.is_file():
        raise InputError(str(path), "is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read the sweep file ({exc})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(str(path), f"malformed YAML{at}: {problem}") from None


def _field_path(loc: tuple[Any, ...], raw: Any) -> str:
    parts = [p for p in loc if not (isinstance(p, str) and (p.startswith("~") or p == "[key]"))]
    if (
        parts[:1] == ["scheduler"]
        and len(parts) > 1
        and isinstance(raw, dict)
        and isinstance(raw.get("scheduler"), dict)
        and "asha" in raw["scheduler"]
    ):
        parts.insert(1, "asha")
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(top level)"


_MODELS: dict[str, type[BaseModel]] = {
    "": SweepSpec,
    "data": DataSpec,
    "train": TrainSpec,
    "search": SearchDim,
    "scheduler.asha": SchedulerSpec,
    "objective": ObjectiveSpec,
    "posthoc": PosthocSpec,
    "posthoc.wise": WiseSpec,
    "resources": ResourcesSpec,
    "tracking": TrackingSpec,
    "report": ReportSpec,
    "model": ModelSpec,
}


def _message(error: ErrorDetails, where: str) -> str:
    kind, text = error["type"], error["msg"]
    if kind == "missing":
        return "this key is required"
    if kind == "extra_forbidden":
        parent = where.rpartition(".")[0]
        parent = "search" if parent.startswith("search.") else parent
        model = _MODELS.get(parent)
        allowed = [n for n in model.model_fields if n != "kind"] if model else []
        return "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if text.startswith("Value error, "):
        return text[len("Value error, ") :]
    if kind == "form":
        return text
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{text[0].lower()}{text[1:]} (got {shown})"


def from_mapping(data: Any, path: str | Path | None = None) -> SweepSpec:
    """Validate an already parsed sweep (a dict); errors name ``path`` when given."""
    source = str(path) if path is not None else "<sweep>"
    if data is None:
        raise InputError(source, "the sweep file is empty; it needs at least name, method and data")
    if not isinstance(data, dict):
        raise InputError(
            source, f"the top level must be a mapping of keys (name, method, data, ...), not a {type(data).__name__}"
        )
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = _field_path(error["loc"], data)
        raise InputError(f"{source}: {where}", _message(error, where)) from None
    spec._path = Path(path) if path is not None else None
    try:
        spec._context_length = checks.validate(spec, explicit_report_metrics="metrics" in (data.get("report") or {}))
    except InputError as exc:
        raise InputError(f"{source}: {exc.where}", exc.message) from None
    return spec


def load(path: str | Path) -> SweepSpec:
    """Parse and validate the sweep file at ``path``; raises :class:`InputError` on any problem."""
    path = Path(path)
    return from_mapping(read_yaml(path), path)
