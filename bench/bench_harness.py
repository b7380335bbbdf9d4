"""Harness overhead: N identical FT trials through `sweeper launch` against a bare Python loop.

For each trial length (set by the number of photo training images), the same N trainings (seeds
0..N-1) run twice, side by side in one session:

- bare: ``trainables.loop.run(config)`` called N times in one process, one after the other;
- sweep: ``sweeper launch`` as a user runs it (a fresh process: imports, local Ray, MLflow parent
  and child runs, checkpoints, reuse_actors), one trial at a time.

Both use every CPU for the one running trial (the sweep's ``resources.cpu`` is the machine's CPU
count, so each trial gets that many torch threads), so the ratio is the harness's cost alone. The
ratio sweep / bare falls as trials get longer: Ray's start-up and per-trial book-keeping are
fixed costs. ``--scaling`` adds, on the longest length, the throughput of 2 concurrent workers of
1 CPU each against 1 worker of 1 CPU, and against the 1 worker with every CPU measured above
(``--scaling-only`` skips the lengths and that row).

Run: .venv/bin/python bench/bench_harness.py [--trials 4] [--sizes 20,200,800] [--repeats 1] [--scaling]
     [--scaling-only]
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
    return {
        "method": "ft",
        "model": "zoo/tiny-clip-v1",
        "data": {
            "source": {"shapes": {"per_class": {"train": per_class, "test": 50}}},
            "id": "photo",
            "ood": ["clipart", "sketch", "painting", "infograph"],
        },
        "train": {"epochs": 2, "batch_size": 64, "lr": 3e-4},
    }


def bare(per_class: int, trials: int, threads: int) -> float:
    """Wall time of the trainings in a plain loop (world cached beforehand, like the sweep's)."""
    from trainables.loop import run

    torch.set_num_threads(threads)
    start = time.perf_counter()
    for seed in range(trials):
        run({**trial_config(per_class), "seed": seed, "device": "cpu"})
    return time.perf_counter() - start


def sweep(per_class: int, trials: int, cpu_per_trial: int, folder: Path, tag: str, workers: int | None = None) -> float:
    """Wall time of `sweeper launch` on the same trainings, from the command's start to its exit;
    ``workers`` caps the trials running at once (default: as many as the CPUs allow)."""
    config = trial_config(per_class)
    spec = {
        "name": f"harness-{tag}",
        **{k: config[k] for k in ("method", "model", "data", "train")},
        "seeds": list(range(trials)),
        "searcher": "grid",
        "resources": {"cpu": cpu_per_trial},
        "max_concurrent": workers,
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }
    path = folder / f"harness-{tag}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    cli = Path(sys.executable).with_name("sweeper")
    start = time.perf_counter()
    subprocess.run(
        [str(cli), "launch", str(path), "--storage", str(folder / "sweeps")],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=folder,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--sizes", default="20,200,800", help="photo training images per class, per length")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--scaling", action="store_true", help="also 2 workers vs 1 on the longest length")
    parser.add_argument("--scaling-only", action="store_true", help="only the scaling rows")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from trainables.loop import run  # warm the world cache and the imports outside the timings

    for size in sizes[-1:] if args.scaling_only else sizes:
        run({**trial_config(size), "train": {"epochs": 1, "batch_size": 64}, "device": "cpu"})
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as tmp:
        threaded = None if args.scaling_only else lengths(sizes, args.trials, args.repeats, Path(tmp))
        if args.scaling or args.scaling_only:
            scaling(sizes[-1], args.trials, args.repeats, Path(tmp), threaded)


def lengths(sizes: list[int], trials: int, repeats: int, folder: Path) -> float:
    """The harness's overhead by trial length: bare loop against `sweeper launch`, one trial at a
    time; returns the last length's sweep wall time (1 worker with every CPU)."""
    print(f"{trials} identical FT trials per row, {CPUS} CPUs, medians of {repeats}")
    print("| photo images | trial (bare) s | bare total s | sweep total s | sweep / bare |")
    print("|---:|---:|---:|---:|---:|")
    for size in sizes:
        bares, sweeps = [], []
        for repeat in range(repeats):
            bares.append(bare(size, trials, CPUS))
            sweeps.append(sweep(size, trials, CPUS, folder, f"{size}-{repeat}"))
        b, s = statistics.median(bares), statistics.median(sweeps)
        print(f"| {size * 10:,} | {b / trials:.1f} | {b:.1f} | {s:.1f} | {s / b:.3f} |", flush=True)
    return s


def scaling(size: int, trials: int, repeats: int, folder: Path, threaded: float | None = None) -> None:
    """Throughput of CPUS workers of 1 CPU each against 1 worker of 1 CPU (linear scaling would be
    CPUS x) and, when ``threaded`` (that sweep's wall time) is given, against 1 worker with every
    CPU: threads inside one trial instead of trials side by side."""

    def timed(cpu: int, workers: int, tag: str) -> float:
        return statistics.median(sweep(size, trials, cpu, folder, f"{tag}-{r}", workers) for r in range(repeats))

    many = timed(1, CPUS, "many")
    single = timed(1, 1, "single")
    print(f"\nscaling: {trials} FT trials of {size * 10:,} photo images through `sweeper launch`, medians of {repeats}")
    print("| workers x threads per trial | sweep wall s | throughput vs 1 x 1 |")
    print("|---|---:|---:|")
    rows = [(f"{CPUS} x 1", many), ("1 x 1", single)] + ([(f"1 x {CPUS}", threaded)] if threaded else [])
    for label, wall in rows:
        print(f"| {label} | {wall:.1f} | {single / wall:.2f} |", flush=True)


if __name__ == "__main__":
    main()
