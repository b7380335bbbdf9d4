"""`shapes`: a deterministic synthetic multi-domain image world with captions and held-out tasks.

Classes are shapes; domains are rendering styles (photo, clipart, sketch, painting, infograph).
Ten shapes are classification classes; four more appear only in pretraining captions, so that a
fine-tuned model's zero-shot ability on them measures retention. Colour naming is a second
held-out task. Splits are fixed by a seed and cached on disk.
"""

from __future__ import annotations

import torch

from trainables.data.shape_render import Scenes, render
from trainables.data.shapes_world import (
    ALL_SHAPES,
    CLASSES,
    COLOURS,
    DOMAINS,
    HELD_OUT_SHAPES,
    MAX_ROTATION,
    SIZES,
    SPLITS,
    ShapesConfig,
)


def generator_for(config: ShapesConfig, *parts: object) -> torch.Generator:
    """A generator seeded from the world config and a purpose, stable across processes."""
    return torch.Generator().manual_seed(int(config.key(*parts), 16) % (2**63))


def sample_scenes(shape_ids: torch.Tensor, domain: str, size: int, gen: torch.Generator) -> tuple[Scenes, torch.Tensor]:
    """Random colour, size, position and rotation for the given shapes; also the size bucket ids."""
    n = shape_ids.numel()
    colour = torch.randint(len(COLOURS), (n,), generator=gen)
    if domain == "infograph":  # a small object among clutter
        bucket = torch.zeros(n, dtype=torch.long)
    else:
        bucket = torch.randint(len(SIZES), (n,), generator=gen)
    bounds = torch.tensor(list(SIZES.values())) * (size / 32)
    low, high = bounds[bucket, 0], bounds[bucket, 1]
    radius = low + torch.rand(n, generator=gen) * (high - low)
    margin = radius * 0.9
    centre = margin[:, None] + torch.rand((n, 2), generator=gen) * (size - 2 * margin[:, None])
    angle = (torch.rand(n, generator=gen) * 2 - 1) * MAX_ROTATION
    return Scenes(shape_ids, colour, radius, centre, angle), bucket


def position_ids(centre: torch.Tensor, size: int) -> torch.Tensor:
    """Index into the flattened 3x3 POSITIONS grid for each centre (x, y)."""
    cell = (centre / size * 3).floor().clamp(0, 2).long()
    return cell[:, 1] * 3 + cell[:, 0]


def render_batch(
    shape_ids: torch.Tensor, domain: str, size: int, gen: torch.Generator
) -> tuple[torch.Tensor, Scenes, torch.Tensor]:
    """Sample scenes for ``shape_ids`` (indices into ALL_SHAPES) and draw them in ``domain``."""
    scenes, bucket = sample_scenes(shape_ids, domain, size, gen)
    return render(scenes, domain, list(ALL_SHAPES), size, gen), scenes, bucket


def balanced_labels(num_classes: int, per_class: int, gen: torch.Generator) -> torch.Tensor:
    """Exactly ``per_class`` labels of each class, in a seeded random order."""
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    return labels[torch.randperm(labels.numel(), generator=gen)]


def make_split(config: ShapesConfig, domain: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8 [N,3,H,W]) and labels of one domain's split of the classification task."""
    if domain not in DOMAINS:
        raise KeyError(f"unknown shapes domain {domain!r}; known: {', '.join(DOMAINS)}")
    if split not in SPLITS:
        raise KeyError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    gen = generator_for(config, "split", domain, split)
    labels = balanced_labels(len(CLASSES), config.per_class[split], gen)
    images, _, _ = render_batch(labels, domain, config.image_size, gen)
    return images, labels


def make_task(config: ShapesConfig, task: str, per_class: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a held-out zero-shot task, drawn evenly from every domain."""
    gen = generator_for(config, "task", task, per_class)
    images, labels = [], []
    for domain in DOMAINS:
        if task == "unseen_shapes":
            y = balanced_labels(len(HELD_OUT_SHAPES), per_class, gen)
            x, _, _ = render_batch(y + len(CLASSES), domain, config.image_size, gen)
        elif task == "colour":
            shapes = torch.randint(len(CLASSES), (per_class * len(COLOURS),), generator=gen)
            x, scenes, _ = render_batch(shapes, domain, config.image_size, gen)
            y = scenes.colour
        else:
            raise KeyError(f"unknown shapes task {task!r}; known: unseen_shapes, colour")
        images.append(x)
        labels.append(y)
    return torch.cat(images), torch.cat(labels)
