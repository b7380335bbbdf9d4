"""Harness overhead: N identical FT trials through `sweeper launch` against a bare Python loop.

For each trial length (set by the number of photo training images), the same N trainings (seeds
0..N-1) run twice, side by side in one session:

- bare: ``trainables.loop.run(config)`` called N times in one process, one after the other;
- sweep: ``sweeper launch`` as a user runs it (a fresh process: imports, local Ray, MLflow parent
  and child runs, checkpoints, reuse_actors), one trial at a time.

Both use every CPU for the one running trial (the sweep's ``resources.cpu`` is the machine's CPU
count, so each trial gets that many torch threads), so the ratio is the harness's cost alone. The
ratio sweep / bare falls as trials get longer: Ray's start-up and per-trial book-keeping are
fixed costs. ``--scaling`` adds the throughput of 2 concurrent workers (1 CPU each) against 1
worker (all CPUs) on the longest length.

Run: .venv/bin/python bench/bench_harness.py [--trials 4] [--sizes 20,100,400] [--repeats 1] [--scaling]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

CPUS = os.cpu_count() or 1
TARGET = 1.10  # sweep / bare for trials of 60 s or more (the performance issue)


def trial_config(per_class: int) -> dict:
    return {"method": "ft", "model": "zoo/tiny-clip-v1",
            "data": {"source": {"shapes": {"per_class": {"train": per_class, "test": 50}}},
                     "id": "photo", "ood": ["clipart", "sketch", "painting", "infograph"]},
            "train": {"epochs": 2, "batch_size": 64, "lr": 3e-4}}


def bare(per_class: int, trials: int, threads: int) -> float:
    """Wall time of the trainings in a plain loop (world cached beforehand, like the sweep's)."""
    from trainables.loop import run

    torch.set_num_threads(threads)
    start = time.perf_counter()
    for seed in range(trials):
        run({**trial_config(per_class), "seed": seed, "device": "cpu"})
    return time.perf_counter() - start


def sweep(per_class: int, trials: int, cpu_per_trial: int, folder: Path, tag: str) -> float:
    """Wall time of `sweeper launch` on the same trainings, from the command's start to its exit."""
    config = trial_config(per_class)
    spec = {"name": f"harness-{tag}", **{k: config[k] for k in ("method", "model", "data", "train")},
            "seeds": list(range(trials)), "searcher": "grid", "resources": {"cpu": cpu_per_trial},
            "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"}}
    path = folder / f"harness-{tag}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    cli = Path(sys.executable).with_name("sweeper")
    start = time.perf_counter()
    subprocess.run([str(cli), "launch", str(path), "--storage", str(folder / "sweeps")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--sizes", default="20,100,400", help="photo training images per class, per length")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--scaling", action="store_true", help="also 2 workers vs 1 on the longest length")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from trainables.loop import run  # warm the world cache and the imports outside the timings

    for size in sizes:
        run({**trial_config(size), "train": {"epochs": 1, "batch_size": 64}, "device": "cpu"})
    print(f"{args.trials} identical FT trials per row, {CPUS} CPUs, medians of {args.repeats}")
    print("| photo images | trial (bare) s | bare total s | sweep total s | sweep / bare |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as tmp:
        for size in sizes:
            bares, sweeps = [], []
            for repeat in range(args.repeats):
                bares.append(bare(size, args.trials, CPUS))
                sweeps.append(sweep(size, args.trials, CPUS, Path(tmp), f"{size}-{repeat}"))
            b, s = statistics.median(bares), statistics.median(sweeps)
            print(f"| {size * 10:,} | {b / args.trials:.1f} | {b:.1f} | {s:.1f} | {s / b:.3f} |", flush=True)
        if args.scaling:
            size = sizes[-1]
            one = statistics.median(sweep(size, args.trials, CPUS, Path(tmp), f"one-{r}") for r in range(args.repeats))
            two = statistics.median(sweep(size, args.trials, 1, Path(tmp), f"two-{r}") for r in range(args.repeats))
            print(f"\nscaling, {args.trials} trials of {size * 10:,} images: 1 worker x {CPUS} threads "
                  f"{one:.1f} s, {CPUS} workers x 1 thread {two:.1f} s, throughput ratio {one / two:.2f} (target 1.8)")


if __name__ == "__main__":
    main()
