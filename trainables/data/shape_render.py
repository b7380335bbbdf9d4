"""Render batches of `shapes` scenes in five styles (domains), vectorised with torch.

A scene is one object (shape, colour, radius, centre, rotation) drawn in one style. All randomness
comes from the ``torch.Generator`` passed in, so the same generator state gives identical pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainables.data.shape_sdf import SHAPE_SDFS
from trainables.data.shapes_world import COLOURS, DOMAINS

Tensor = torch.Tensor


@dataclass
class Scenes:
    """Per-image parameters of a batch; every tensor has the batch size as its first dimension."""

    shape: Tensor  # long, index into the world's shape list
    colour: Tensor  # long, index into COLOURS
    radius: Tensor  # float, pixels
    centre: Tensor  # float [B, 2], (x, y) pixels
    angle: Tensor  # float, radians


def _uniform(gen: torch.Generator, n: int, low: float, high: float, *shape: int) -> Tensor:
    return torch.rand((n, *shape), generator=gen) * (high - low) + low


def _signed_distance(scenes: Scenes, shape_names: list[str], size: int) -> Tensor:
    """Signed distance to each object's boundary, in pixels, as [B, H, W]."""
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    dx = x[None] - scenes.centre[:, 0, None, None]
    dy = y[None] - scenes.centre[:, 1, None, None]
    cos, sin = torch.cos(scenes.angle)[:, None, None], torch.sin(scenes.angle)[:, None, None]
    r = scenes.radius[:, None, None]
    u = (cos * dx + sin * dy) / r
    v = (-sin * dx + cos * dy) / r
    out = torch.empty_like(u)
    for index in scenes.shape.unique().tolist():
        rows = scenes.shape == index
        out[rows] = SHAPE_SDFS[shape_names[index]](u[rows], v[rows])
    return out * r


def _fill(sdf: Tensor) -> Tensor:
    return (0.5 - sdf).clamp(0, 1)


def _stroke(sdf: Tensor, width: float) -> Tensor:
    return (width / 2 + 0.5 - sdf.abs()).clamp(0, 1)


def _low_freq_noise(gen: torch.Generator, n: int, size: int, cells: int, channels: int = 1) -> Tensor:
    """Smooth random field in [0, 1]: a coarse grid of random values upsampled bilinearly."""
    coarse = torch.rand((n, channels, cells, cells), generator=gen)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur as a weighted sum of shifted copies (much faster than a grouped
    conv2d on CPU for small images)."""
    radius = max(1, math.ceil(2 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    weights = torch.exp(-(t**2) / (2 * sigma**2))
    taps = (weights / weights.sum()).tolist()
    h, w = images.shape[-2:]
    padded = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    images = sum(k * padded[..., :, i : i + w] for i, k in enumerate(taps))
    padded = F.pad(images, (0, 0, radius, radius), mode="replicate")
    return sum(k * padded[..., i : i + h, :] for i, k in enumerate(taps))


def _over(background: Tensor, colour: Tensor, alpha: Tensor) -> Tensor:
    """Alpha-composite ``colour`` ([B,3,H,W] or [B,3,1,1]) over ``background`` with [B,H,W] alpha."""
    a = alpha[:, None]
    return background * (1 - a) + colour * a


def _object_colour(scenes: Scenes, gen: torch.Generator, jitter: float) -> Tensor:
    palette = torch.tensor(list(COLOURS.values()))
    base = palette[scenes.colour]
    noise = (torch.rand(base.shape, generator=gen) - 0.5) * 2 * jitter
    return (base + noise).clamp(0, 1)[:, :, None, None]


def _render_photo(sdf: Tensor, scenes: Scenes, colour: Tensor, gen: torch.Generator) -> Tensor:
    n, size = sdf.shape[0], sdf.shape[-1]
    tint = _uniform(gen, n, 0.25, 0.75, 3, 1, 1)
    texture = _low_freq_noise(gen, n, size, cells=6, channels=3) - 0.5
    background = (tint + 0.15 * texture).clamp(0, 1)
    # Shading: light from a random direction across the object, plus a soft drop shadow.
    light = _uniform(gen, n, 0, 2 * math.pi)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    dx = (x[None] - scenes.centre[:, 0, None, None]) / scenes.radius[:, None, None]
    dy = (y[None] - scenes.centre[:, 1, None, None]) / scenes.radius[:, None, None]
    shade = 1.0 + 0.3 * (torch.cos(light)[:, None, None] * dx + torch.sin(light)[:, None, None] * dy)
    shadow = _fill(torch.roll(sdf, shifts=(1, 1), dims=(1, 2)) - 1.0) * 0.35
    image = background * (1 - shadow[:, None])
    image = _over(image, (colour * shade[:, None]).clamp(0, 1), _fill(sdf))
    return image + 0.03 * torch.randn(image.shape, generator=gen)


def _render_clipart(sdf: Tensor, colour: Tensor, gen: torch.Generator) -> Tensor:
    n = sdf.shape[0]
    background = _uniform(gen, n, 0.85, 1.0, 3, 1, 1).expand(-1, -1, *sdf.shape[1:])
    image = _over(background, colour, _fill(sdf))
    return _over(image, torch.zeros_like(colour), _stroke(sdf, 1.0))


def _render_sketch(sdf: Tensor, colour: Tensor, gen: torch.Generator) -> Tensor:
    n, size = sdf.shape[0], sdf.shape[-1]
    paper = _uniform(gen, n, 0.88, 1.0, 1, 1, 1) - 0.06 * _low_freq_noise(gen, n, size, cells=8)
    background = paper.expand(-1, 3, -1, -1)
    # Pencil pressure varies along the stroke.
    pressure = 0.6 + 0.4 * _low_freq_noise(gen, n, size, cells=5)[:, 0]
    return _over(background, colour * 0.8, _stroke(sdf, 1.3) * pressure)


def _render_painting(sdf: Tensor, colour: Tensor, gen: torch.Generator) -> Tensor:
    n, size = sdf.shape[0], sdf.shape[-1]
    wash = 0.35 + 0.45 * _low_freq_noise(gen, n, size, cells=3, channels=3)
    image = _over(wash, colour, _fill(sdf) * 0.9)
    brush = 0.85 + 0.3 * _low_freq_noise(gen, n, size, cells=10)
    image = image * brush
    # Colour jitter: per-image channel gains and a brightness shift, then a soft blur.
    gains = _uniform(gen, n, 0.8, 1.2, 3, 1, 1)
    image = image * gains + _uniform(gen, n, -0.08, 0.08, 1, 1, 1)
    return _gaussian_blur(image.clamp(0, 1), sigma=0.8)


def _render_infograph(sdf: Tensor, colour: Tensor, gen: torch.Generator, clutter: int) -> Tensor:
    n, size = sdf.shape[0], sdf.shape[-1]
    background = _uniform(gen, n, 0.8, 1.0, 3, 1, 1).expand(-1, -1, size, size).clone()
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    # Clutter: small bars and dots (charts, icons, text lines) drawn under the object.
    cx = _uniform(gen, n, 0, size, clutter, 1, 1)
    cy = _uniform(gen, n, 0, size, clutter, 1, 1)
    half_w = _uniform(gen, n, 0.6, size / 8, clutter, 1, 1)
    half_h = _uniform(gen, n, 0.6, size / 16, clutter, 1, 1)
    box = torch.maximum((x - cx).abs() - half_w, (y - cy).abs() - half_h)
    tones = torch.rand((n, clutter, 3), generator=gen) * 0.7
    for k in range(clutter):
        background = _over(background, tones[:, k, :, None, None], _fill(box[:, k]))
    image = _over(background, colour, _fill(sdf))
    return _over(image, torch.zeros_like(colour), _stroke(sdf, 0.8) * 0.6)


def render(scenes: Scenes, domain: str, shape_names: list[str], size: int, gen: torch.Generator) -> Tensor:
    """Draw ``scenes`` in ``domain`` style; returns uint8 images [B, 3, size, size]."""
    sdf = _signed_distance(scenes, shape_names, size)
    colour = _object_colour(scenes, gen, jitter=0.06)
    if domain == "photo":
        image = _render_photo(sdf, scenes, colour, gen)
    elif domain == "clipart":
        image = _render_clipart(sdf, colour, gen)
    elif domain == "sketch":
        image = _render_sketch(sdf, colour, gen)
    elif domain == "painting":
        image = _render_painting(sdf, colour, gen)
    elif domain == "infograph":
        image = _render_infograph(sdf, colour, gen, clutter=7)
    else:
        raise KeyError(f"unknown shapes domain {domain!r}; known: {', '.join(DOMAINS)}")
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)
