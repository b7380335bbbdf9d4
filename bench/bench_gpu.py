"""GPU benchmarks: ViT-B/16 fine-tuning steps/s inside Sweeper against a bare PyTorch loop, and
four trials packed on one GPU at ``gpu: 0.25`` against one trial alone.

Weights and images are random (nothing is downloaded); both paths train the same image tower and
a 10-class head in bf16 autocast on batches already on the GPU, so the ratio is the cost of
Sweeper's step (the method's loss, the loop's step and its loss bookkeeping), not of data loading.

Run on a CUDA machine:  python bench/bench_gpu.py [--steps 30] [--repeats 5] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F

from trainables.config import TrialConfig
from trainables.device import autocast, share_gpu
from trainables.loop import build_method
from trainables.models.zoo.card import save_weights
from trainables.optim import warmup_cosine
from trainables.training import train_step

ARCH = "ViT-B-16"
CLASSES = 10
DEVICE = torch.device("cuda")


def random_checkpoint(folder: Path) -> Path:
    """A randomly initialised ViT-B-16 CLIP, saved where the real loading path can read it."""
    path = folder / "vit-b-16-random.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        save_weights(open_clip.create_model(ARCH, pretrained=None), path)
    return path


def sweeper_stepper(weights: Path, steps: int):
    """The FT method built as a trial builds it, stepped by ``trainables.training.train_step``."""
    config = TrialConfig.model_validate(
        {
            "method": "ft",
            "model": {"arch": ARCH, "pretrained": str(weights)},
            "device": "cuda",
            "data": {
                "source": {"shapes": {"image_size": 224, "per_class": {"train": 1, "val": 1, "test": 1}}},
                "id": "photo",
                "ood": [],
            },
        }
    )
    method, _ = build_method(config, DEVICE)
    method.train()
    optimizer = torch.optim.AdamW(method.parameter_groups(), lr=1e-5, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(10 * steps, 0.0))

    def step(images: torch.Tensor, labels: torch.Tensor, totals: dict) -> None:
        for name, value in train_step(method, images, labels, optimizer, scheduler, DEVICE).items():
            totals[name] = totals.get(name, 0.0) + value.detach().float()

    return step


def bare_stepper(weights: Path):
    """The same image tower and a linear head, trained by a plain PyTorch loop."""
    model = open_clip.create_model(ARCH, pretrained=str(weights))
    visual = model.visual.to(DEVICE).train()
    head = torch.nn.Linear(model.visual.output_dim, CLASSES).to(DEVICE)
    optimizer = torch.optim.AdamW([*visual.parameters(), *head.parameters()], lr=1e-5, weight_decay=0.1)

    def step(images: torch.Tensor, labels: torch.Tensor, totals: dict) -> None:
        with autocast(DEVICE):
            loss = F.cross_entropy(100 * head(F.normalize(visual(images), dim=-1)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        totals["loss"] = totals.get("loss", 0.0) + loss.detach().float()

    return step


def steps_per_second(step, batch: int, steps: int) -> float:
    images = torch.randn(batch, 3, 224, 224, device=DEVICE)
    labels = torch.randint(CLASSES, (batch,), device=DEVICE)
    totals: dict = {}
    for _ in range(3):  # warm-up: kernels chosen, allocator filled
        step(images, labels, totals)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step(images, labels, totals)
    float(totals["loss"])  # read once per "epoch", as the loop does
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def overhead(weights: Path, batch: int, steps: int, repeats: int) -> dict:
    sweeper, bare = sweeper_stepper(weights, steps), bare_stepper(weights)
    rates: dict[str, list[float]] = {"sweeper": [], "bare": []}
    for _ in range(repeats):  # interleaved, so clock and thermal drift hit both alike
        rates["sweeper"].append(steps_per_second(sweeper, batch, steps))
        rates["bare"].append(steps_per_second(bare, batch, steps))
    median = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "sweeper_steps_s": median["sweeper"],
        "bare_steps_s": median["bare"],
        "ratio": median["sweeper"] / median["bare"],
        "rates": rates,
    }


def worker(weights: Path, share: float, batch: int, steps: int, go: Path) -> None:
    """One packed trial: cap memory at its share, warm up, wait for the others, then time."""
    share_gpu(DEVICE, share)
    step = sweeper_stepper(weights, steps)
    images = torch.randn(batch, 3, 224, 224, device=DEVICE)
    labels = torch.randint(CLASSES, (batch,), device=DEVICE)
    totals: dict = {}
    for _ in range(3):
        step(images, labels, totals)
    torch.cuda.synchronize()
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    start = time.time()
    for _ in range(steps):
        step(images, labels, totals)
    float(totals["loss"])
    torch.cuda.synchronize()
    print(json.dumps({"start": start, "end": time.time(), "peak_mib": torch.cuda.max_memory_allocated() / 2**20}))


def packed(weights: Path, trials: int, share: float, batch: int, steps: int, folder: Path) -> dict:
    go = folder / f"go-{trials}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(share),
                "--batch",
                str(batch),
                "--steps",
                str(steps),
                "--go",
                str(go),
                "--weights",
                str(weights),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(trials)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    results = [json.loads(proc.communicate(timeout=900)[0].strip().splitlines()[-1]) for proc in procs]
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "trials": trials,
        "share": share,
        "wall_s": wall,
        "steps_s": trials * steps / wall,
        "peak_mib": max(r["peak_mib"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--worker", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--go", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.weights, args.worker, args.batch, args.steps, args.go)
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA device")
    with tempfile.TemporaryDirectory() as tmp:
        weights = random_checkpoint(Path(tmp))
        result = {
            "device": torch.cuda.get_device_name(0),
            "batch": args.batch,
            "steps": args.steps,
            "overhead": overhead(weights, args.batch, args.steps, args.repeats),
        }
        alone = packed(weights, 1, 1.0, args.batch, args.steps, Path(tmp))
        four = packed(weights, 4, 0.25, args.batch, args.steps, Path(tmp))
        result["packing"] = {"alone": alone, "four": four, "throughput_ratio": four["steps_s"] / alone["steps_s"]}
    print(json.dumps(result, indent=1))
    o, p = result["overhead"], result["packing"]
    print(f"\n| {result['device']}, ViT-B/16, batch {args.batch}, bf16 | value |\n|---|---:|")
    print(f"| Sweeper step, steps/s (median of {args.repeats}) | {o['sweeper_steps_s']:.2f} |")
    print(f"| bare PyTorch loop, steps/s | {o['bare_steps_s']:.2f} |")
    print(f"| ratio Sweeper / bare (target >= 0.95) | {o['ratio']:.3f} |")
    print(f"| 1 trial alone, steps/s | {p['alone']['steps_s']:.2f} |")
    print(f"| 4 trials at gpu: 0.25, steps/s together | {p['four']['steps_s']:.2f} |")
    print(f"| throughput ratio, 4 packed / 1 alone | {p['throughput_ratio']:.2f} |")


if __name__ == "__main__":
    main()
