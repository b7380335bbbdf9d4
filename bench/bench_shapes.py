"""Throughput of the `shapes` world on one core: rendering per domain, and cache reads vs renders.

Run: .venv/bin/python bench/bench_shapes.py   (prints a Markdown table for BENCHMARKS.md)
"""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path

import torch

from trainables.data import shapes, shapes_world
from trainables.data.shapes_source import ShapesSource

N = 4000
REPEATS = 3
TARGET = 5000  # images per second on one core, from the embedded-world issue


def best_rate(fn, n: int) -> float:
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - start))
    return max(rates)


def render_seeded(ids: torch.Tensor, domain: str) -> torch.Tensor:
    """One batch rendered from a fresh generator, so every timed repeat draws the same images."""
    return shapes.render_batch(ids, domain, 32, torch.Generator().manual_seed(1))


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for domain in shapes_world.DOMAINS:
        ids = torch.randint(len(shapes_world.CLASSES), (N,), generator=torch.Generator().manual_seed(0))
        rate = best_rate(functools.partial(render_seeded, ids, domain), N)
        rows.append((domain, rate))
    total = len(rows) * N / sum(N / r for _, r in rows)
    config = shapes.ShapesConfig(per_class={"train": 400, "val": 10, "test": 10})
    with tempfile.TemporaryDirectory() as tmp:
        source = ShapesSource(config, cache_dir=Path(tmp))
        n = 400 * len(shapes_world.CLASSES)
        start = time.perf_counter()
        source.split("photo", "train")  # renders and writes the cache
        render_rate = n / (time.perf_counter() - start)
        cached_rate = best_rate(lambda: source.split("photo", "train"), n)
    print("| measure (1 thread, 32x32) | images/s | ratio |")
    print("|---|---:|---:|")
    for domain, rate in rows:
        print(f"| render {domain} | {rate:,.0f} | {rate / TARGET:.2f}x target |")
    print(f"| render, all domains mixed | {total:,.0f} | {total / TARGET:.2f}x target |")
    print(f"| photo train split, first use (render + write cache) | {render_rate:,.0f} | 1.00 |")
    print(
        f"| photo train split, cached (safetensors read) | {cached_rate:,.0f} "
        f"| {cached_rate / render_rate:.1f}x first use |"
    )


if __name__ == "__main__":
    main()
