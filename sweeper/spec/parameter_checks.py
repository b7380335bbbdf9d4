"""The fixed and searched values of a sweep: each key a parameter of its method or a train setting,
each value one they accept, each search dim well formed and its ``when`` condition one that can hold.

Each check raises :class:`InputError` whose ``where`` is the field path inside the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sweeper.spec.metric_checks import listing as _listing
from sweeper.spec.sections import TrainSpec
from trainables.config import TRAIN_KEYS
from trainables.errors import InputError

if TYPE_CHECKING:
    from sweeper.spec.schema import SweepSpec
    from sweeper.spec.sections import SearchDim
    from trainables.methods.params.base import MethodParams


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
        raise InputError(
            where, f"give exactly one of grid, int, float, choice; got {_listing(given) if given else 'none'}"
        )
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


def check_parameters(
    spec: SweepSpec, method: type[MethodParams], length: int, methods: list[type[MethodParams]] | None = None
) -> None:
    """The fixed and searched values of ``method`` (its declaration); with several searched
    ``methods``, a key must belong to some method, and a method's parameter needs
    ``when: {method: ...}`` on its dim."""
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
                raise InputError(
                    where, f"unknown parameter {key!r} for method {method.method!r}; known: {_listing(allowed)}{hint}"
                )
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
                    raise InputError(
                        where,
                        f"{key} rejects a value such as {value} from this float range "
                        f"({_first_error(exc)}); use int: [lo, hi] for an integer parameter",
                    ) from None
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
