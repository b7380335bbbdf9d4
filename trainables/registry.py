"""The method registry: ``@register`` a :class:`~trainables.methods.base.Method` subclass by name.

Adding a method means adding one file in ``trainables/methods/`` that defines and registers its
class; every module in that package is imported on first lookup, so nothing else changes.
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

M = TypeVar("M", bound="type[Method]")
_REGISTRY: dict[str, type[Method]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_loaded = False


def register(name: str):
    """Class decorator: make a method available to sweep files under ``name``."""

    def decorate(cls: M) -> M:
        if not _NAME.match(name):
            raise ValueError(f"method name {name!r} must be lower_snake_case")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    import trainables.methods as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{package.__name__}.{info.name}")
    _loaded = True


def get(name: str, field: str = "method") -> type[Method]:
    """The method class registered as ``name``; an InputError lists the known ones otherwise."""
    _load_all()
    if name not in _REGISTRY:
        raise InputError(field, f"unknown method {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def names(pattern: str = "*") -> list[str]:
    """Registered method names matching a shell-style ``pattern``."""
    _load_all()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
