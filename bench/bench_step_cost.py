"""Cost of each method's regulariser: training-step time at equal batch size, against its baseline.

Lipsum-FT and CAR-FT against FT, DiVE against FLYP (the contrastive loss it extends). Each method
is built as a trial builds it (tiny-clip-v1) and stepped by ``trainables.training.train_step`` on one
fixed batch; the methods are interleaved over the repeats so that load on the machine hits all
alike, and each figure is the median of the repeats.

Run: .venv/bin/python bench/bench_step_cost.py [--steps 20] [--repeats 5] [--batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from trainables.config import TrialConfig
from trainables.loop import build_method
from trainables.optim import warmup_cosine
from trainables.training import train_step

PAIRS = (("lipsum_ft", "ft"), ("lipsum_ft[bank]", "ft"), ("car_ft", "ft"), ("dive", "flyp"))
# Variants: a label's method and parameters. The bank holds 1,024 texts, drawn 80 per step.
VARIANTS = {"lipsum_ft[bank]": ("lipsum_ft", {"text_bank": 1024})}
TARGET = 1.25  # Lipsum-FT / FT, from the performance issue
DATA = {"source": {"shapes": {"per_class": {"train": 8, "val": 2, "test": 2}}}, "id": "photo", "ood": []}


def stepper(label: str, steps: int):
    method_name, params = VARIANTS.get(label, (label, {}))
    config = TrialConfig.model_validate({"method": method_name, "data": DATA, "device": "cpu", "params": params})
    method, _ = build_method(config, torch.device("cpu"))
    method.prepare([])  # the bank's one-off encoding, outside the timed steps
    method.train()
    optimizer = torch.optim.AdamW(method.parameter_groups(), lr=1e-5, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(100 * steps, 0.0))
    return lambda images, labels: train_step(method, images, labels, optimizer, scheduler, torch.device("cpu"))


def seconds_per_step(step, images: torch.Tensor, labels: torch.Tensor, steps: int) -> float:
    for _ in range(3):
        step(images, labels)
    start = time.perf_counter()
    for _ in range(steps):
        step(images, labels)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, 32, 32, generator=generator)
    labels = torch.randint(10, (args.batch,), generator=generator)
    names = sorted({name for pair in PAIRS for name in pair})
    steppers = {name: stepper(name, args.steps) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.repeats):
        for name in names:
            times[name].append(seconds_per_step(steppers[name], images, labels, args.steps))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"| method vs baseline (tiny-clip-v1, batch {args.batch}, 1 thread, CPU) | ms/step | baseline ms/step | ratio |"
    )
    print("|---|---:|---:|---:|")
    for method, baseline in PAIRS:
        ratio = median[method] / median[baseline]
        note = f" (target <= {TARGET})" if method.startswith("lipsum_ft") else ""
        print(
            f"| {method} / {baseline}{note} | {median[method] * 1e3:.1f} | {median[baseline] * 1e3:.1f} | {ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
