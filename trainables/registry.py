"""The method registry: each method's declaration (its ``Params``) and its implementation, by name.

A method is two modules of one name: ``trainables/methods/params/<module>.py`` declares it without
torch (``@register_params("name")`` on its ``MethodParams`` subclass: hyperparameters, checks,
recipe, paper), and ``trainables/methods/<module>.py`` implements it (``@register("name")`` on its
``Method`` subclass, whose ``Params`` is that class). Every declaration module is imported on the
first lookup, so nothing else changes when a method is added. Checking a sweep file and listing the
methods read the declarations only and never import torch; ``get`` imports the one implementation
a trial runs.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import re
from typing import TYPE_CHECKING, TypeVar

from trainables.errors import InputError

if TYPE_CHECKING:
    from trainables.methods.base import Method
    from trainables.methods.params.base import MethodParams

P = TypeVar("P", bound="type[MethodParams]")
M = TypeVar("M", bound="type[Method]")
_PARAMS: dict[str, type[MethodParams]] = {}
_METHODS: dict[str, type[Method]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PARAMS_PACKAGE = "trainables.methods.params"
_loaded = False


def register_params(name: str):
    """Class decorator: declare the method ``name`` by its hyperparameter class."""

    def decorate(cls: P) -> P:
        if not _NAME.match(name):
            raise ValueError(f"method name {name!r} must be lower_snake_case")
        if name in _PARAMS and _PARAMS[name] is not cls:
            raise ValueError(f"method {name!r} is declared twice")
        cls.method = name
        _PARAMS[name] = cls
        return cls

    return decorate


def register(name: str):
    """Class decorator: the implementation of the declared method ``name``."""

    def decorate(cls: M) -> M:
        declared = params(name)
        if cls.Params is not declared:
            raise ValueError(
                f"method {name!r}: {cls.__name__}.Params must be {declared.__name__}, "
                f"its declaration in {declared.__module__}"
            )
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is registered twice")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorate


def _load_declarations() -> None:
    global _loaded
    if _loaded:
        return
    package = importlib.import_module(_PARAMS_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{_PARAMS_PACKAGE}.{info.name}")
    _loaded = True


def params(name: str, field: str = "method") -> type[MethodParams]:
    """The hyperparameter class (the declaration) of method ``name``; importing it needs no torch.
    An InputError naming ``field`` lists the known methods otherwise."""
    _load_declarations()
    if name not in _PARAMS:
        raise InputError(field, f"unknown method {name!r}; known: {', '.join(sorted(_PARAMS))}")
    return _PARAMS[name]


def get(name: str, field: str = "method") -> type[Method]:
    """The ``Method`` class of ``name``, imported from ``trainables/methods/`` on first use."""
    declared = params(name, field)
    if name not in _METHODS:
        module = declared.__module__.replace(f"{_PARAMS_PACKAGE}.", "trainables.methods.", 1)
        importlib.import_module(module)
        if name not in _METHODS:
            raise LookupError(
                f"method {name!r} is declared in {declared.__module__} but {module} registers no implementation of it"
            )
    return _METHODS[name]


def names(pattern: str = "*") -> list[str]:
    """Declared method names matching a shell-style ``pattern``."""
    _load_declarations()
    return sorted(n for n in _PARAMS if fnmatch.fnmatch(n, pattern))
