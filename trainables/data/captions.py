"""Captions for contrastive pretraining on `shapes`, and the prompt templates for zero-shot heads.

A caption names the domain (style), colour, shape, size and position of the object. Attributes
other than the shape are dropped at random, as alt-text would, so that short prompts such as
"a photo of a star." are in distribution for the text tower.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainables.data.shapes_world import ALL_SHAPES, COLOURS, DOMAINS, POSITIONS, SIZES

if TYPE_CHECKING:
    import torch

    from trainables.data.shape_render import Scenes

STYLE_PHRASES: dict[str, tuple[str, ...]] = {
    "photo": ("a photo of", "a photo of"),
    "clipart": ("clipart of", "a clipart of"),
    "sketch": ("a sketch of", "a pencil sketch of"),
    "painting": ("a painting of", "a watercolor painting of"),
    "infograph": ("an infographic with", "an infographic showing"),
}
# Zero-shot prompt ensemble for class names; only words that pretraining captions use.
CLASS_TEMPLATES: tuple[str, ...] = (
    "a {}.",
    "a photo of a {}.",
    "clipart of a {}.",
    "a sketch of a {}.",
    "a painting of a {}.",
    "an infographic with a {}.",
    "a small {}.",
    "a large {}.",
    "a {} in the center.",
    "a photo of a small {}.",
)
TASK_TEMPLATES: dict[str, tuple[str, ...]] = {
    "unseen_shapes": CLASS_TEMPLATES,
    "colour": ("a {} shape.", "a photo of a {} shape.", "a sketch of a {} shape.", "clipart of a {} shape."),
}
_FLAT_POSITIONS = [p for row in POSITIONS for p in row]
_SIZE_NAMES = list(SIZES)
_COLOUR_NAMES = list(COLOURS)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption(domain: str, shape: str, colour: str, size: str, position: str, keep: list[bool], variant: int) -> str:
    """One caption; ``keep`` says whether style, size, colour and position are named."""
    keep_style, keep_size, keep_colour, keep_position = keep
    noun = " ".join(w for w, k in ((size, keep_size), (colour, keep_colour)) if k) + " " + shape
    noun = noun.strip()
    text = f"{_article(noun)} {noun}"
    if keep_style:
        text = f"{STYLE_PHRASES[domain][variant % 2]} {text}"
    if keep_position:
        place = "in the center" if position == "center" else f"in the {position}"
        text = f"{text} {place}"
    return text + "."


def captions_for(
    scenes: Scenes,
    bucket: torch.Tensor,
    domain: str,
    size: int,
    gen: torch.Generator,
    drop: float = 0.35,
    generic: float = 0.1,
) -> list[str]:
    """Captions for a rendered batch. ``generic`` is the chance of saying "shape" for the shape."""
    # Imported here: the templates above serve sweep-file checks, which should not import torch.
    import torch

    from trainables.data.shapes import position_ids

    n = scenes.shape.numel()
    keep = (torch.rand((n, 4), generator=gen) >= drop).tolist()
    variant = torch.randint(2, (n,), generator=gen).tolist()
    say_shape = (torch.rand(n, generator=gen) >= generic).tolist()
    where = position_ids(scenes.centre, size).tolist()
    out = []
    for i in range(n):
        shape = ALL_SHAPES[scenes.shape[i]] if say_shape[i] else "shape"
        out.append(
            caption(
                domain,
                shape,
                _COLOUR_NAMES[scenes.colour[i]],
                _SIZE_NAMES[bucket[i]],
                _FLAT_POSITIONS[where[i]],
                keep[i],
                variant[i],
            )
        )
    return out


assert set(STYLE_PHRASES) == set(DOMAINS)
