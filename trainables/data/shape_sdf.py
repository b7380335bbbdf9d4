"""Signed distance functions of the `shapes` world, vectorised over a batch.

Every function takes local coordinates ``u, v`` (tensors of one shape, the object's radius is 1,
``v`` grows downwards) and returns an approximate signed distance in the same units: negative
inside, positive outside. Approximate is enough: the renderer only needs a value that crosses zero
on the boundary and grows about linearly away from it, for anti-aliasing and outlines.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Tensor = torch.Tensor
SDF = Callable[[Tensor, Tensor], Tensor]


def _circle(u: Tensor, v: Tensor, cu: float = 0.0, cv: float = 0.0, r: float = 0.9) -> Tensor:
    return torch.sqrt((u - cu) ** 2 + (v - cv) ** 2) - r


def _box(u: Tensor, v: Tensor, u0: float, u1: float, v0: float, v1: float) -> Tensor:
    cu, cv, hu, hv = (u0 + u1) / 2, (v0 + v1) / 2, (u1 - u0) / 2, (v1 - v0) / 2
    return torch.maximum((u - cu).abs() - hu, (v - cv).abs() - hv)


def _convex(u: Tensor, v: Tensor, vertices: list[tuple[float, float]]) -> Tensor:
    """Distance to a convex polygon as the max over its edges' half-planes."""
    out = None
    n = len(vertices)
    c_u = sum(p[0] for p in vertices) / n
    c_v = sum(p[1] for p in vertices) / n
    for k in range(n):
        (a_u, a_v), (b_u, b_v) = vertices[k], vertices[(k + 1) % n]
        e_u, e_v = b_u - a_u, b_v - a_v
        norm = math.hypot(e_u, e_v)
        n_u, n_v = -e_v / norm, e_u / norm
        if (c_u - a_u) * n_u + (c_v - a_v) * n_v > 0:  # make the normal point outwards
            n_u, n_v = -n_u, -n_v
        d = (u - a_u) * n_u + (v - a_v) * n_v
        out = d if out is None else torch.maximum(out, d)
    assert out is not None
    return out


def _regular(u: Tensor, v: Tensor, sides: int, apothem: float) -> Tensor:
    angle = torch.atan2(u, -v)  # 0 points up
    sector = 2 * math.pi / sides
    folded = torch.remainder(angle + sector / 2, sector) - sector / 2
    return torch.sqrt(u**2 + v**2) * torch.cos(folded) - apothem


def _star(u: Tensor, v: Tensor, points: int = 5, outer: float = 1.0, inner: float = 0.42) -> Tensor:
    angle = torch.atan2(u, -v)
    sector = 2 * math.pi / points
    folded = (torch.remainder(angle + sector / 2, sector) - sector / 2).abs() / (sector / 2)
    boundary = outer * (1 - folded) + inner * folded
    # Scale so the value is roughly a distance near the narrow arms.
    return (torch.sqrt(u**2 + v**2) - boundary) * 0.6


def _ellipse(u: Tensor, v: Tensor, a: float = 1.0, b: float = 0.5) -> Tensor:
    return (torch.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * b


def circle(u: Tensor, v: Tensor) -> Tensor:
    return _circle(u, v)


def square(u: Tensor, v: Tensor) -> Tensor:
    return _box(u, v, -0.72, 0.72, -0.72, 0.72)


def triangle(u: Tensor, v: Tensor) -> Tensor:
    return _regular(u, v + 0.15, 3, 0.5)


def pentagon(u: Tensor, v: Tensor) -> Tensor:
    return _regular(u, v, 5, 0.78)


def star(u: Tensor, v: Tensor) -> Tensor:
    return _star(u, v)


def cross(u: Tensor, v: Tensor) -> Tensor:
    return torch.minimum(_box(u, v, -0.92, 0.92, -0.3, 0.3), _box(u, v, -0.3, 0.3, -0.92, 0.92))


def ring(u: Tensor, v: Tensor) -> Tensor:
    return (torch.sqrt(u**2 + v**2) - 0.68).abs() - 0.24


def heart(u: Tensor, v: Tensor) -> Tensor:
    lobes = torch.minimum(_circle(u, v, -0.42, -0.28, 0.47), _circle(u, v, 0.42, -0.28, 0.47))
    point = _convex(u, v, [(-0.86, -0.12), (0.86, -0.12), (0.0, 0.92)])
    return torch.minimum(lobes, point)


def crescent(u: Tensor, v: Tensor) -> Tensor:
    return torch.maximum(_circle(u, v, 0.0, 0.0, 0.92), -_circle(u, v, 0.42, -0.22, 0.72))


def arrow(u: Tensor, v: Tensor) -> Tensor:
    shaft = _box(u, v, -0.92, 0.15, -0.2, 0.2)
    head = _convex(u, v, [(0.05, -0.62), (0.95, 0.0), (0.05, 0.62)])
    return torch.minimum(shaft, head)


def ellipse(u: Tensor, v: Tensor) -> Tensor:
    return _ellipse(u, v)


def semicircle(u: Tensor, v: Tensor) -> Tensor:
    return torch.maximum(_circle(u, v, 0.0, 0.35, 0.95), v - 0.35)


def hourglass(u: Tensor, v: Tensor) -> Tensor:
    top = _convex(u, v, [(-0.8, -0.9), (0.8, -0.9), (0.0, 0.0)])
    bottom = _convex(u, v, [(0.8, 0.9), (-0.8, 0.9), (0.0, 0.0)])
    return torch.minimum(top, bottom)


def tee(u: Tensor, v: Tensor) -> Tensor:
    return torch.minimum(_box(u, v, -0.9, 0.9, -0.9, -0.48), _box(u, v, -0.22, 0.22, -0.9, 0.9))


SHAPE_SDFS: dict[str, SDF] = {
    fn.__name__: fn
    for fn in (
        circle,
        square,
        triangle,
        star,
        cross,
        ring,
        heart,
        crescent,
        arrow,
        ellipse,
        semicircle,
        hourglass,
        tee,
        pentagon,
    )
}
