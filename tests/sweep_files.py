"""Sweep files that several tests launch as real driver processes (importable: ``tests`` is on the path)."""

from __future__ import annotations

from typing import Any


def killable_sweep(name: str) -> dict[str, Any]:
    """Three Lipsum-FT trials of four short epochs, one at a time: slow enough that a test can kill
    or race the driver midway, small enough to finish in a minute or two."""
    return {
        "name": name,
        "method": "lipsum_ft",
        "model": "zoo/tiny-clip-v1",
        "data": {
            "source": {"shapes": {"per_class": {"train": 24, "val": 10, "test": 10}}},
            "id": "photo",
            "ood": ["sketch"],
        },
        "train": {"epochs": 4, "batch_size": 40, "lr": 1e-4},
        "fixed": {"M": 8},
        "search": {"L": {"grid": [2, 4, 6]}},
        "seeds": [0],
        "resources": {"cpu": 1},
        "max_concurrent": 1,
    }
