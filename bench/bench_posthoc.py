"""What post-hoc WiSE and the zero-shot point cost per trial, as ratios measured in one run.

Tiny trials run by ``trainables.loop.run`` on the shapes world (tiny-clip-v1, 1 thread):

- ft with no ``posthoc``, with ``posthoc.wise`` at 11 alphas (every test domain), and at 3 alphas
  with ``domains: [<id>]``: trial wall time, the time inside the WiSE curve, and each trial's
  wall time as a ratio to the one without posthoc;
- in every trial, the time of the zero-shot point (``trainables.zeroshot_point``: one evaluation
  pass over the test and validation splits) and its share of the trial, both cold (the sweep's
  first trial on a node: evaluated, then stored) and warm (read back from disk); also for coop,
  a frozen-tower method that takes the cold point's encoded splits into its feature cache.

The point's disk cache lives in a temporary folder for the run; a cold trial gets an empty one.

Run: .venv/bin/python bench/bench_posthoc.py [--epochs 2] [--train 100] [--val 20] [--test 50] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import trainables.loop as loop
from trainables import zeroshot_point

ID, OOD, OOD_VAL = "photo", ["clipart", "sketch"], ["painting"]


def timed_trial(config: dict[str, Any], point_cache: Path) -> dict[str, float]:
    """Wall seconds of one trial and of its zero-shot point and WiSE curve inside it."""
    zeroshot_point.cache_root = lambda: point_cache  # type: ignore[assignment]
    spent = {"point": 0.0, "curve": 0.0}
    real = {"point": loop.zero_shot_point, "curve": loop.wise_curve}

    def timer(part: str) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return real[part](*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - start

        return wrapped

    loop.zero_shot_point, loop.wise_curve = timer("point"), timer("curve")  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        loop.run(config)
        wall = time.perf_counter() - start
    finally:
        loop.zero_shot_point, loop.wise_curve = real["point"], real["curve"]  # type: ignore[assignment]
    return {"wall": wall, **spent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train", type=int, default=100, help="training images per class")
    parser.add_argument("--val", type=int, default=20, help="validation images per class and domain")
    parser.add_argument("--test", type=int, default=50, help="test images per class and domain")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    source = {"shapes": {"per_class": {"train": args.train, "val": args.val, "test": args.test}}}
    data = {"source": source, "id": ID, "ood": OOD, "ood_val": OOD_VAL}
    train = {"epochs": args.epochs, "batch_size": 64}
    warm = Path(tempfile.mkdtemp(prefix="bench-posthoc-"))
    timed_trial({"method": "zeroshot", "data": data}, warm)  # the data cache, and the warm point
    cases = [
        ("ft, no posthoc, point warm", "ft", None, True),
        ("ft, no posthoc, point cold", "ft", None, False),
        ("ft, posthoc.wise 11 alphas, every test domain", "ft", {"wise": {}}, True),
        (
            f"ft, posthoc.wise 3 alphas, domains [{ID}]",
            "ft",
            {"wise": {"alphas": [0.0, 0.5, 1.0], "domains": [ID]}},
            True,
        ),
        ("coop, no posthoc, point warm", "coop", None, True),
        ("coop, no posthoc, point cold", "coop", None, False),
    ]
    print(
        f"| trial ({args.epochs} epochs; per class: {args.train} train, {args.val} val, {args.test} test; "
        "1 thread) | wall s | / the method's first row | WiSE curve s | zero-shot point s | point share |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    bases: dict[str, float] = {}
    for label, method, posthoc, cached in cases:
        config: dict[str, Any] = {"method": method, "data": data, "train": train}
        if posthoc is not None:
            config["posthoc"] = posthoc
        caches = [warm if cached else Path(tempfile.mkdtemp(prefix="bench-posthoc-")) for _ in range(args.repeats)]
        runs = [timed_trial(config, cache) for cache in caches]
        wall, curve, point = (statistics.median(r[k] for r in runs) for k in ("wall", "curve", "point"))
        base = bases.setdefault(method, wall)
        ratio = f"{wall / base:.2f}"
        print(f"| {label} | {wall:.1f} | {ratio} | {curve:.1f} | {point:.1f} | {point / wall:.1%} |")


if __name__ == "__main__":
    main()
