"""Open a data source from the ``data.source`` value of a sweep file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainables.data.base import DataSource
from trainables.data.imagefolder import DomainFolderSource
from trainables.data.imagenet import ImageNetVariantsSource
from trainables.data.shapes_source import ShapesSource
from trainables.data.shapes_world import ShapesConfig
from trainables.errors import InputError

LAYOUTS = ("domainnet", "imagenet")
SHAPES_OPTIONS = ("image_size", "seed", "per_class")


def _shapes_config(options: Mapping[str, Any], field: str) -> ShapesConfig:
    """``{image_size: 32, seed: 0, per_class: {train: 500, val: 100, test: 200}}``, all optional."""
    if not isinstance(options, Mapping):
        raise InputError(field, f"must be a mapping of {', '.join(SHAPES_OPTIONS)}, got {options!r}")
    unknown = set(options) - set(SHAPES_OPTIONS)
    if unknown:
        raise InputError(f"{field}.{sorted(unknown, key=str)[0]}", f"unknown key; allowed: {', '.join(SHAPES_OPTIONS)}")
    for key in ("image_size", "seed"):
        value = options.get(key, 0 if key == "seed" else 32)
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 8):
            raise InputError(f"{field}.{key}", f"must be an integer >= {0 if key == 'seed' else 8}, got {value!r}")
    per_class = dict(ShapesConfig().per_class)
    given = options.get("per_class") or {}
    if not isinstance(given, Mapping):
        raise InputError(
            f"{field}.per_class", f"must be a mapping of split to count ({{train: 500, ...}}), got {given!r}"
        )
    for split, count in given.items():
        if split not in per_class:
            raise InputError(f"{field}.per_class.{split}", "unknown split; allowed: train, val, test")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InputError(f"{field}.per_class.{split}", f"must be an integer >= 1, got {count!r}")
        per_class[split] = count
    return ShapesConfig(image_size=options.get("image_size", 32), seed=options.get("seed", 0), per_class=per_class)


def open_source(source: str | Mapping[str, Any], field: str = "data.source") -> DataSource:
    """``shapes``, ``{shapes: {image_size, seed}}`` or ``{imagefolder: PATH, layout: domainnet|imagenet}``."""
    if source == "shapes":
        return ShapesSource()
    if not isinstance(source, Mapping):
        raise InputError(field, f"unknown data source {source!r}; use shapes or {{imagefolder: PATH}}")
    if "shapes" in source:
        return ShapesSource(_shapes_config(source["shapes"] or {}, f"{field}.shapes"))
    if "imagefolder" in source:
        unknown = set(source) - {"imagefolder", "layout", "domains"}
        if unknown:
            raise InputError(
                f"{field}.{sorted(unknown, key=str)[0]}", "unknown key; allowed: imagefolder, layout, domains"
            )
        layout = source.get("layout", "domainnet")
        if layout == "domainnet":
            return DomainFolderSource(source["imagefolder"], source.get("domains"), f"{field}.imagefolder")
        if layout == "imagenet":
            return ImageNetVariantsSource(source["imagefolder"], field=f"{field}.imagefolder")
        raise InputError(f"{field}.layout", f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    raise InputError(field, f"unknown data source {dict(source)!r}; use shapes or {{imagefolder: PATH}}")
