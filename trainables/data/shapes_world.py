"""What the `shapes` world contains: its classes, held-out shapes, colours, domains and splits.

Plain data, importable without torch (checking a sweep file names domains and splits); drawing
lives in ``shape_render`` and sampling in ``shapes``. Part of the rendering code's digest
(``shapes_source.RENDERING_MODULES``): a change here re-renders every cached split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

DOMAINS: tuple[str, ...] = ("photo", "clipart", "sketch", "painting", "infograph")

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.12, 0.12),
    "orange": (0.96, 0.55, 0.08),
    "yellow": (0.95, 0.88, 0.12),
    "green": (0.15, 0.68, 0.2),
    "cyan": (0.1, 0.78, 0.85),
    "blue": (0.12, 0.25, 0.9),
    "purple": (0.55, 0.18, 0.78),
    "pink": (0.98, 0.5, 0.72),
}

CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "heart",
    "crescent",
    "arrow",
    "ellipse",
)
HELD_OUT_SHAPES: tuple[str, ...] = ("semicircle", "hourglass", "tee", "pentagon")
ALL_SHAPES: tuple[str, ...] = CLASSES + HELD_OUT_SHAPES
SIZES: dict[str, tuple[float, float]] = {"small": (6.5, 8.5), "medium": (9.5, 11.5), "large": (12.5, 14.5)}
POSITIONS: tuple[tuple[str, ...], ...] = (
    ("top left", "top", "top right"),
    ("left", "center", "right"),
    ("bottom left", "bottom", "bottom right"),
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
# Objects are rotated uniformly within +-MAX_ROTATION radians of upright (35 degrees): enough to
# vary every image, not so much that the tiny towers must first learn rotation invariance.
MAX_ROTATION = 0.6
# Part of every seed: bump it to change the world's images on purpose. (Caches are keyed by the
# rendering code itself, see shapes_source.rendering_digest.)
WORLD_VERSION = 1


@dataclass(frozen=True)
class ShapesConfig:
    """Everything that determines the pixels of the `shapes` world."""

    image_size: int = 32
    seed: int = 0
    per_class: dict[str, int] = field(default_factory=lambda: {"train": 500, "val": 100, "test": 200})

    def key(self, *parts: object) -> str:
        text = repr((WORLD_VERSION, self.image_size, self.seed, *parts))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


TASK_CLASSNAMES: dict[str, tuple[str, ...]] = {
    "unseen_shapes": HELD_OUT_SHAPES,
    "colour": tuple(COLOURS),
}
