"""Helpers of :mod:`sweeper.spec`: reading the YAML, and the checks of a parsed sweep that need more
than its types (method, model, data, search space, tracking URI; metric names are in
:mod:`sweeper.metric_checks`).

Each check raises :class:`InputError` whose ``where`` is the field path inside the file;
:func:`sweeper.spec.from_mapping` adds the file name in front.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from trainables import registry
from trainables.data.base import user_path
from trainables.data.sources import open_source
from trainables.errors import InputError
from trainables.models import zoo
from trainables.models.loading import ZOO_PREFIX, _check_arch, check_weights_file, resolve_hub_weights

from sweeper.metric_checks import check_eval_every, check_metric, check_objective, check_retention
from sweeper.metric_checks import listing as _listing
from sweeper.references import check_references
from sweeper.tracking_uri import check_tracking_uri

if TYPE_CHECKING:
    from sweeper.spec import SearchDim, SweepSpec
    from trainables.methods.params.base import MethodParams

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


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


def validate(spec: SweepSpec, explicit_report_metrics: bool = True) -> int:
    """Run every check in file order; returns the model's text context length."""
    methods = check_methods(spec)
    length = context_length(spec.model)
    check_data(spec)
    check_seeds(spec.seeds)
    for method in methods:
        check_parameters(spec, method, length, methods)
    check_searcher(spec)
    if not spec.data.ood and not explicit_report_metrics:
        spec.report.metrics = [m for m in spec.report.metrics if not m.startswith("ood/")]
    check_metric(spec.objective.metric, spec.data.ood, "objective.metric", spec.data.ood_val)
    check_objective(spec)
    check_eval_every(spec)
    for i, metric in enumerate(spec.report.metrics):
        check_metric(metric, spec.data.ood, f"report.metrics[{i}]", spec.data.ood_val)
    check_retention(spec)
    for i, row in enumerate(spec.report.rows or []):
        if row not in spec.search:
            raise InputError(f"report.rows[{i}]", f"{row!r} is not a search key; searched: {_listing(spec.search)}")
    check_references(spec, length)
    check_tracking_uri(spec.tracking.uri, "tracking.uri")
    return length


def check_methods(spec: SweepSpec) -> list[type[MethodParams]]:
    """The declarations (hyperparameter classes) of the sweep's methods: one, or each value of
    ``search.method``."""
    if spec.method is not None:
        cls = registry.params(spec.method, field="method")
        _check_method_conditions(spec, [spec.method])
        return [cls]
    dim = spec.search["method"]
    classes = []
    for i, name in enumerate(dim.values):
        where = f"method.{dim.kind}[{i}]"
        if not isinstance(name, str):
            raise InputError(where, f"must be a method name, got {name!r}")
        if name in dim.values[:i]:
            raise InputError(where, f"{name!r} is listed twice")
        classes.append(registry.params(name, field=where))
    _check_method_conditions(spec, dim.values)
    return classes


def _check_method_conditions(spec: SweepSpec, methods: list[Any]) -> None:
    """``when: {method: M}`` on a search dim must name a method the sweep runs (else the dim is never searched)."""
    for key, dim in spec.search.items():
        if key != "method" and dim.when and "method" in dim.when and dim.when["method"] not in methods:
            raise InputError(f"search.{key}.when.method",
                             f"never holds: the sweep's methods are {_listing(map(repr, methods))}")


def context_length(model: str | BaseModel) -> int:
    """The text context length of the model spec, read from its config without loading weights."""
    if isinstance(model, str):
        if not model.startswith(ZOO_PREFIX):
            raise InputError("model", f"{model!r} is not a zoo model; write zoo/<name> or {{arch: ..., pretrained: ...}}")
        name = model[len(ZOO_PREFIX):]
        if name not in zoo.names():
            raise InputError("model", f"unknown zoo model {name!r}; shipped: {', '.join(zoo.names())}")
        return int(json.loads(zoo.config_path(name).read_text())["text_cfg"]["context_length"])
    import open_clip

    _check_arch(model.arch, "model.arch")
    pretrained = model.pretrained
    if os.sep in pretrained or pretrained.endswith(WEIGHT_SUFFIXES):
        check_weights_file(user_path(pretrained, "model.pretrained"), "model.pretrained")
    else:
        resolve_hub_weights(model.arch, pretrained, model.cache_dir, "model.pretrained")
    return int(open_clip.get_model_config(model.arch)["text_cfg"].get("context_length", 77))


def check_data(spec: SweepSpec) -> None:
    data = spec.data
    source = open_source(data.source, field="data.source")
    known = f"known domains: {', '.join(source.domains)}"
    if data.id not in source.domains:
        raise InputError("data.id", f"unknown domain {data.id!r}; {known}")
    for i, domain in enumerate(data.ood):
        if domain == data.id:
            raise InputError(f"data.ood[{i}]", f"{domain!r} is the ID domain (data.id); OOD domains must differ from it")
        if domain not in source.domains:
            raise InputError(f"data.ood[{i}]", f"unknown domain {domain!r}; {known}")
        if domain in data.ood[:i]:
            raise InputError(f"data.ood[{i}]", f"{domain!r} is listed twice")
    for i, domain in enumerate(data.ood_val):
        where = f"data.ood_val[{i}]"
        if domain == data.id or domain in data.ood:
            # Validating on a test domain's own data is DomainBed's oracle, not a held-out domain.
            raise InputError(where, f"{domain!r} is also {'data.id' if domain == data.id else 'in data.ood'}; "
                                    "a held-out validation domain must be neither trained nor tested on")
        if domain not in source.domains:
            raise InputError(where, f"unknown domain {domain!r}; {known}")
        if domain in data.ood_val[:i]:
            raise InputError(where, f"{domain!r} is listed twice")
        if domain in getattr(source, "test_only", ()):
            raise InputError(where, f"{domain!r} is a test-only set and has no validation split")


def check_seeds(seeds: list[int]) -> None:
    for i, seed in enumerate(seeds):
        if seed in seeds[:i]:
            raise InputError(f"seeds[{i}]", f"seed {seed} is listed twice")


def _candidates(key: str, dim: SearchDim) -> list[tuple[str, Any]]:
    """(field path, value) of every value the dim can take that is worth validating."""
    kind, values = dim.kind, dim.values
    out = [(f"search.{key}.{kind}[{i}]", v) for i, v in enumerate(values)]
    if kind == "float" and values[0] != values[1]:
        out.append((f"search.{key}.float", (values[0] + values[1]) / 2))  # an int parameter rejects it
    return out


def _check_shape(key: str, dim: SearchDim) -> None:
    where = f"search.{key}"
    given = [k for k in ("grid", "int", "float", "choice") if getattr(dim, k) is not None]
    if len(given) != 1:
        raise InputError(where, f"give exactly one of grid, int, float, choice; got {_listing(given) if given else 'none'}")
    kind = given[0]
    if kind in ("int", "float"):
        lo, hi = dim.values
        if lo > hi:
            raise InputError(f"{where}.{kind}", f"the lower end {lo} is above the upper end {hi}")
        if dim.log and lo <= 0:
            raise InputError(f"{where}.{kind}[0]", f"a log-scaled range needs a lower end above 0, got {lo}")
    elif dim.log:
        raise InputError(f"{where}.log", "log applies to int and float ranges only")


def _applies_to(dim: SearchDim, method: str) -> bool:
    return dim.when is None or dim.when.get("method", method) == method


def check_parameters(spec: SweepSpec, method: type[MethodParams], length: int,
                     methods: list[type[MethodParams]] | None = None) -> None:
    """The fixed and searched values of ``method`` (its declaration); with several searched
    ``methods``, a key must belong to some method, and a method's parameter needs
    ``when: {method: ...}`` on its dim."""
    from sweeper.spec import TRAIN_KEYS, TrainSpec

    methods = methods or [method]
    method_names = list(method.model_fields)
    allowed = method_names + [k for k in TRAIN_KEYS if k not in method_names]
    anyone = set(allowed).union(*(m.model_fields for m in methods))
    search = {k: d for k, d in spec.search.items() if k != "method" and _applies_to(d, method.method)}
    for section, keys in (("fixed", spec.fixed), ("search", search)):
        for key in keys:
            where = f"{section}.{key}"
            if key == "seed":
                raise InputError(where, "seed is not a parameter: seeds are their own axis, list them under seeds")
            if key == "method":
                raise InputError(where, "method is not a parameter: write method: {choice: [...]} to search methods")
            if key not in allowed and (section == "search" or key not in anyone):
                hint = "; add when: {method: ...} to search only it" if key in anyone else ""
                raise InputError(where, f"unknown parameter {key!r} for method {method.method!r}; known: {_listing(allowed)}{hint}")
            if section == "search" and key in spec.fixed:
                raise InputError(where, f"{key!r} is both fixed and searched; keep it in one of the two")
    fixed_method = {k: v for k, v in spec.fixed.items() if k in method_names}
    fixed_train = {k: v for k, v in spec.fixed.items() if k in TRAIN_KEYS and k not in method_names}
    base_train = spec.train.model_dump()

    try:
        method(**fixed_method).check_model(length)
    except ValidationError as exc:
        raise InputError(_fixed_where(exc.errors()[0]["loc"], fixed_method), _first_error(exc)) from None
    except InputError as exc:
        raise InputError(_fixed_where((exc.where,), fixed_method), exc.message) from None
    try:
        TrainSpec.model_validate({**base_train, **fixed_train})
    except ValidationError as exc:
        raise InputError(f"fixed.{exc.errors()[0]['loc'][0]}", _first_error(exc)) from None

    def check_value(key: str, value: Any, where: str) -> None:
        if key in method_names:
            try:
                params = method(**{**fixed_method, key: value})
            except ValidationError as exc:
                if where.endswith(".float"):  # the midpoint of a float range
                    raise InputError(where, f"{key} rejects a value such as {value} from this float range "
                                     f"({_first_error(exc)}); use int: [lo, hi] for an integer parameter") from None
                raise InputError(where, _first_error(exc)) from None
            try:
                params.check_model(length)
            except InputError as exc:
                raise InputError(where, exc.message) from None
        else:
            try:
                TrainSpec.model_validate({**base_train, **fixed_train, key: value})
            except ValidationError as exc:
                raise InputError(where, _first_error(exc)) from None

    order = list(spec.search)
    for key, dim in search.items():
        _check_shape(key, dim)
        for name, value in (dim.when or {}).items():
            where = f"search.{key}.when.{name}"
            if name == key or (name not in spec.fixed and name not in spec.search):
                raise InputError(where, f"{name!r} is neither another search key nor a fixed key")
            if name in spec.search and order.index(name) > order.index(key):
                raise InputError(where, f"{name!r} must come before {key!r} in search, so that it is chosen first")
            if name in spec.fixed and spec.fixed[name] != value:
                raise InputError(where, f"never holds: {name} is fixed to {spec.fixed[name]!r}")
            other = spec.search.get(name)
            if other is not None and other.kind in ("grid", "choice") and value not in other.values:
                raise InputError(where, f"never holds: {name} takes only {_listing(map(repr, other.values))}")
        for where, value in _candidates(key, dim):
            check_value(key, value, where)


def _fixed_where(loc: tuple[Any, ...], fixed: dict[str, Any]) -> str:
    """``fixed.<param>``, or ``fixed.<param>.<sub>`` for a method's nested field such as upgrade_model.arch."""
    head = str(loc[0]).split(".")[0] if loc else None
    return f"fixed.{loc[0]}" if head in fixed else "fixed"


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    text = error["msg"].removeprefix("Value error, ")
    text = f"{text[0].lower()}{text[1:]}"
    return text if ", got " in text else f"{text} (got {error.get('input')!r})"


def check_searcher(spec: SweepSpec) -> None:
    if spec.searcher == "grid":
        for key, dim in spec.search.items():
            if dim.kind not in ("grid", "choice"):
                raise InputError(f"search.{key}", f"searcher grid enumerates grid and choice dims only, not a {dim.kind} range; "
                                 "use grid: [...] or searcher tpe / random")
        if spec.num_samples != 1:
            raise InputError("num_samples", "searcher grid runs every combination once; num_samples must be 1 (or omitted)")
    elif not spec.search:
        raise InputError("search", f"searcher {spec.searcher} needs at least one search dim")
