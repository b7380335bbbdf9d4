"""GPU sharing on a real CUDA device (marker `gpu`; skipped without one). On a GPU machine:
`pytest -m gpu -s tests/unit/test_gpu.py`, which prints the figures (no timing is asserted)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import trainables.loop as loop
from trainables import registry
from trainables.device import autocast

ROOT = Path(__file__).resolve().parents[2]
TINY = {"source": {"shapes": {"per_class": {"train": 8, "val": 4, "test": 4}}}, "id": "photo", "ood": ["sketch"]}
CUDA, CPU = torch.device("cuda"), torch.device("cpu")


# --------------------------------------------------------------------------- on a real GPU
# `pytest -m gpu -s tests/unit/test_gpu.py` on a CUDA machine; skipped without one.
# They print their figures (-s shows them); no timing is asserted.

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_gpu_share_caps_allocations_on_a_real_device() -> None:
    """In a fresh process (the cap is per process): at a 0.25 share, 0.2 of the device allocates
    and 0.3 is refused with an out-of-memory error."""
    script = (
        "import torch\n"
        "from trainables.device import share_gpu\n"
        "device = torch.device('cuda')\n"
        "total = torch.cuda.get_device_properties(0).total_memory\n"
        "assert share_gpu(device, 0.25) == 0.25\n"
        "fits = torch.empty(int(0.2 * total), dtype=torch.uint8, device=device)\n"
        "del fits; torch.cuda.empty_cache()\n"
        "try:\n"
        "    torch.empty(int(0.3 * total), dtype=torch.uint8, device=device)\n"
        "except torch.OutOfMemoryError:\n"
        "    print(f'GPU share: {torch.cuda.get_device_name(0)}, {total / 2**30:.1f} GiB; '\n"
        "          f'at 0.25: 0.2 fits, 0.3 refused')\n"
        "else:\n"
        "    raise SystemExit('0.3 of the device was allocated under a 0.25 share')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    print(result.stdout.strip())
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.gpu
@needs_cuda
def test_gpu_trial_trains_and_evaluates_in_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bool, torch.dtype]] = []
    method_cls = registry.get("ft")
    real_loss, real_eval = method_cls.training_loss, loop.evaluate

    def loss(self, images, labels):
        seen.append(("train", torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")))
        return real_loss(self, images, labels)

    def evaluate(*args, **kwargs):
        seen.append(("eval", torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")))
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(method_cls, "training_loss", loss)
    monkeypatch.setattr(loop, "evaluate", evaluate)
    config = {"method": "ft", "data": TINY, "train": {"epochs": 2, "batch_size": 40}, "seed": 3}
    try:
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        gpu = loop.run({**config, "resources": {"cpu": 1, "gpu": 0.5}})
        gpu_s = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2**20
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    on_gpu = list(seen)  # the CPU run below records its (fp32) calls too
    cpu = loop.run({**config, "device": "cpu"})
    assert {kind for kind, _, _ in on_gpu} == {"train", "eval"}
    assert all(enabled and dtype == torch.bfloat16 for _, enabled, dtype in on_gpu)
    assert all(v == v for v in gpu.values())  # no NaN in bf16
    print(
        f"tiny trial on GPU (bf16, 0.5 share): {gpu_s:.1f} s, peak {peak:.0f} MiB; "
        f"id/acc GPU {gpu['id/acc']:.3f} vs CPU fp32 {cpu['id/acc']:.3f}"
    )
    _print_bf16_speedup()


def _print_bf16_speedup() -> None:
    """Forward + backward of a ViT-B-16 image tower (random init, nothing downloaded): fp32 vs bf16."""
    import open_clip

    device = torch.device("cuda")
    model = open_clip.create_model("ViT-B-16", pretrained=None).visual.to(device)
    images = torch.randn(64, 3, 224, 224, device=device)
    timings = {}
    for name in ("fp32", "bf16"):
        for step in range(13):  # 3 warm-up steps, 10 timed
            if step == 3:
                torch.cuda.synchronize()
                start = time.perf_counter()
            with autocast(device) if name == "bf16" else contextlib.nullcontext():
                out = model(images)
            out.float().square().mean().backward()
        torch.cuda.synchronize()
        timings[name] = (time.perf_counter() - start) / 10
    print(
        f"ViT-B-16 image tower, batch 64, fwd+bwd: fp32 {timings['fp32'] * 1e3:.1f} ms, "
        f"bf16 {timings['bf16'] * 1e3:.1f} ms ({timings['fp32'] / timings['bf16']:.2f}x)"
    )


def _max_overlap(intervals: list[tuple[int, int]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = best = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


TRIAL_PROCESS = """
import json, sys, time, torch
from trainables.loop import run
start = time.time()
metrics = run(json.loads(sys.argv[1]))
print(json.dumps({"start": start, "end": time.time(), "acc": metrics["id/acc"],
                  "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
                  "cap_mib": torch.cuda.get_device_properties(0).total_memory * 0.25 / 2**20}))
"""


@pytest.mark.gpu
@needs_cuda
def test_four_trial_processes_share_one_gpu_without_ray() -> None:
    """What Ray does with gpu: 0.25, done by hand: four trial processes at once on one GPU, each
    capped at a quarter of its memory; all finish, side by side, within their caps."""
    data = {**TINY, "source": {"shapes": {"per_class": {"train": 64, "val": 16, "test": 16}}}}
    config = {
        "method": "ft",
        "data": data,
        "train": {"epochs": 3, "batch_size": 64},
        "resources": {"cpu": 2, "gpu": 0.25},
    }
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TRIAL_PROCESS, json.dumps({**config, "seed": seed})],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    wall = time.perf_counter() - start
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    trials = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(t["peak_mib"] <= t["cap_mib"] for t in trials)
    overlap = _max_overlap([(t["start"], t["end"]) for t in trials])
    print(
        f"4 trial processes on one GPU at 0.25 each: {wall:.1f} s wall, up to {overlap} at once, "
        f"peak {max(t['peak_mib'] for t in trials):.0f} MiB of a {trials[0]['cap_mib']:.0f} MiB cap, "
        f"id/acc {[round(t['acc'], 3) for t in trials]}"
    )
    assert overlap >= 2


@pytest.mark.gpu
@pytest.mark.slow
@needs_cuda
def test_four_trials_share_one_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four trials at gpu: 0.25 run side by side on one GPU, each told its share; the same four at
    gpu: 1 run one at a time (printed for comparison). Needs the launch.py change that passes
    ``resources`` into each trial's config."""
    ray = pytest.importorskip("ray")
    from mlflow.tracking import MlflowClient
    from rich.console import Console

    from sweeper.run.launch import launch
    from sweeper.spec.loading import from_mapping
    from sweeper.tracking import results

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ray.init(address="local", num_gpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        figures = {}
        for share in (0.25, 1.0):
            name = f"gpu-share-{share}"
            spec = from_mapping(
                {
                    "name": name,
                    "method": "ft",
                    "data": TINY,
                    "train": {"epochs": 2, "batch_size": 40},
                    "seeds": [0, 1, 2, 3],
                    "resources": {"cpu": 1, "gpu": share},
                    "tracking": {"uri": uri},
                    "objective": {"metric": "id/acc", "mode": "max"},
                }
            )
            start = time.perf_counter()
            assert launch(spec, storage=tmp_path / "sweeps", console=Console(quiet=True)) == 0
            wall = time.perf_counter() - start
            frame = results.load(name, tracking_uri=uri)
            assert len(frame) == 4 and set(frame["status"]) == {"FINISHED"}
            client = MlflowClient(uri)
            runs = [client.get_run(r) for r in frame["run_id"]]
            overlap = _max_overlap([(r.info.start_time, r.info.end_time) for r in runs])
            told = [
                yaml.safe_load(
                    Path(client.download_artifacts(r.info.run_id, "trial.yaml", str(tmp_path))).read_text()
                ).get("resources", {})
                for r in runs
            ]
            assert all(t.get("gpu") == share for t in told), told  # each trial capped itself at its share
            figures[share] = (wall, overlap)
        print(
            f"4 trials on one GPU: at 0.25 {figures[0.25][0]:.1f} s, up to {figures[0.25][1]} at once; "
            f"at 1.0 {figures[1.0][0]:.1f} s, up to {figures[1.0][1]} at once"
        )
        assert figures[0.25][1] >= 2 and figures[1.0][1] == 1
    finally:
        ray.shutdown()
