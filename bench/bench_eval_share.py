"""Share of a trial's wall time spent evaluating (ID + OOD domains + retention tasks, every epoch).

One trial of each method is run by ``trainables.loop.run`` with the embedded defaults (tiny-clip-v1,
the shapes world's default split sizes); the time inside the loop's evaluation is summed and
divided by the trial's wall time.

Run: .venv/bin/python bench/bench_eval_share.py [--methods ft,coop] [--epochs 3] [--eval-every 1] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import trainables.loop as loop

TARGET = 0.10  # at most 10 % of trial time, from the performance issue


def eval_share(method: str, epochs: int, eval_every: int = 1) -> tuple[float, float]:
    """(share of wall time in evaluation, wall time in seconds) of one trial."""
    spent = [0.0]
    real = loop._evaluate_all

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    loop._evaluate_all = timed
    try:
        start = time.perf_counter()
        loop.run(
            {
                "method": method,
                "train": {"epochs": epochs, "eval_every": eval_every},
                "data": {"id": "photo", "ood": ["clipart", "sketch", "painting", "infograph"]},
            }
        )
        wall = time.perf_counter() - start
    finally:
        loop._evaluate_all = real
    return spent[0] / wall, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="ft,coop")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--eval-every", type=int, default=1, help="train.eval_every of the trials")
    args = parser.parse_args()
    torch.set_num_threads(1)
    loop.run({"method": "zeroshot", "data": {"id": "photo", "ood": ["clipart"]}})  # warm the data cache
    print(
        f"| method ({args.epochs} epochs, eval_every {args.eval_every}, 1 thread) "
        "| trial wall s | evaluation share | target |"
    )
    print("|---|---:|---:|---:|")
    for method in args.methods.split(","):
        runs = [eval_share(method, args.epochs, args.eval_every) for _ in range(args.repeats)]
        share = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        print(f"| {method} | {wall:.0f} | {share:.1%} | <= {TARGET:.0%} |")


if __name__ == "__main__":
    main()
