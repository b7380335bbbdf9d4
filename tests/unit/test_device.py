"""GPU sharing per trial, checked on the CPU: no-ops without CUDA, CUDA calls through mocks, and
the loop's wiring. The same on a real GPU: tests/unit/test_gpu.py."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import trainables.loop as loop
import trainables.training as training
from trainables import registry
from trainables.config import TrialConfig, TrialResources
from trainables.device import autocast, loader_options, loader_workers, share_gpu

ROOT = Path(__file__).resolve().parents[2]
TINY = {"source": {"shapes": {"per_class": {"train": 8, "val": 4, "test": 4}}}, "id": "photo", "ood": ["sketch"]}
CUDA, CPU = torch.device("cuda"), torch.device("cpu")


# --------------------------------------------------------------------------- GPU sharing per trial


@pytest.fixture()
def fraction_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, Any]]:
    """Record torch.cuda.set_per_process_memory_fraction instead of calling it. Like torch, it
    refuses a device without an index (a bare "cuda" failed this way on a real H100)."""
    calls: list[tuple[float, Any]] = []

    def record(fraction: float, device: Any = None) -> None:
        if not isinstance(device, int):
            raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:{device}")
        calls.append((fraction, device))

    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", record)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    return calls


@pytest.mark.parametrize("gpu", [0.25, 0.5, 1.0])
def test_a_cuda_trial_caps_its_memory_at_its_gpu_share(fraction_calls, gpu: float) -> None:
    assert share_gpu(CUDA, gpu) == gpu
    assert share_gpu(torch.device("cuda", 1), gpu) == gpu
    assert fraction_calls == [(gpu, 0), (gpu, 1)]  # a bare "cuda" means the current device


def test_gpu_share_is_a_no_op_on_cpu_and_without_a_gpu_request(fraction_calls) -> None:
    assert share_gpu(CPU, 0.5) is None
    assert share_gpu(CUDA, 0) is None  # outside Ray, a trial that asked for no share owns the device
    assert fraction_calls == []
    assert share_gpu(CUDA, 2) == 1.0  # more than one GPU: no cap beyond the whole device


def test_bf16_autocast_on_cuda_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(autocast(CPU), contextlib.nullcontext)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # constructing needs "CUDA present"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    context = autocast(CUDA)
    assert isinstance(context, torch.autocast)
    assert context.device == "cuda" and context.fast_dtype == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # pre-Ampere: fp32
    assert isinstance(autocast(CUDA), contextlib.nullcontext)


def test_cpu_forward_passes_stay_fp32() -> None:
    layer = torch.nn.Linear(4, 3)
    with autocast(CPU):
        assert layer(torch.randn(2, 4)).dtype == torch.float32
    with autocast(CPU, "fp32"):
        assert layer(torch.randn(2, 4)).dtype == torch.float32


def test_bf16_precision_autocasts_on_the_cpu_and_fp32_never_does(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = torch.nn.Linear(4, 3)
    with autocast(CPU, "bf16"):
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert isinstance(autocast(CUDA, "fp32"), contextlib.nullcontext)


@pytest.mark.parametrize(
    ("in_memory", "cpus", "workers"),
    [
        (True, 8, 0),
        (False, 0.5, 0),
        (False, 1, 0),
        (False, 2, 1),
        (False, 4, 3),
        (False, 4.5, 3),
    ],
)
def test_loading_workers_follow_the_trial_cpus(in_memory: bool, cpus: float, workers: int) -> None:
    assert loader_workers(in_memory, cpus) == workers
    assert loader_options(in_memory, cpus, CPU) == {"num_workers": workers, "pin_memory": False}
    assert loader_options(in_memory, cpus, CUDA)["pin_memory"] == (workers > 0)


def test_trial_config_carries_resources_and_rejects_bad_ones() -> None:
    config = TrialConfig.model_validate({"method": "ft", "data": TINY, "resources": {"cpu": 2, "gpu": 0.25}})
    assert config.resources == TrialResources(cpu=2, gpu=0.25)
    assert TrialConfig.model_validate({"method": "ft", "data": TINY}).resources == TrialResources()
    for bad in ({"gpu": -1}, {"cpu": 0}, {"tpu": 1}):
        with pytest.raises(ValueError):
            TrialConfig.model_validate({"method": "ft", "data": TINY, "resources": bad})


def test_the_loop_wires_share_autocast_and_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every training and evaluation forward pass runs inside the autocast context, the share is
    set before the model is built, and the loader gets the trial's workers (0: in-memory data)."""
    depth = {"now": 0}
    seen: dict[str, list[Any]] = {"share": [], "train": [], "eval": [], "loader": []}

    @contextlib.contextmanager
    def counting_autocast(device: torch.device, precision: str = "auto"):
        depth["now"] += 1
        try:
            yield
        finally:
            depth["now"] -= 1

    def recording(name: str, fn):
        def wrapper(*args, **kwargs):
            seen[name].append(depth["now"])
            return fn(*args, **kwargs)

        return wrapper

    real_build, real_loader = loop.build_method, training.DataLoader

    def build(*args, **kwargs):
        assert seen["share"], "the GPU share must be set before the model is loaded"
        return real_build(*args, **kwargs)

    def loader(*args, **kwargs):
        seen["loader"].append(kwargs)
        return real_loader(*args, **kwargs)

    method_cls = registry.get("ft")
    monkeypatch.setattr(loop, "autocast", counting_autocast)
    monkeypatch.setattr(training, "autocast", counting_autocast)
    monkeypatch.setattr(loop, "share_gpu", lambda device, gpu: seen["share"].append((device.type, gpu)))
    monkeypatch.setattr(loop, "build_method", build)
    monkeypatch.setattr(training, "DataLoader", loader)
    monkeypatch.setattr(loop, "evaluate", recording("eval", loop.evaluate))
    monkeypatch.setattr(loop, "retention_metrics", recording("eval", loop.retention_metrics))
    monkeypatch.setattr(method_cls, "training_loss", recording("train", method_cls.training_loss))
    loop.run(
        {"method": "ft", "data": TINY, "train": {"epochs": 1, "batch_size": 40}, "resources": {"cpu": 3, "gpu": 0.5}}
    )
    assert seen["share"] == [("cpu", 0.5)]
    assert seen["train"] and all(d == 1 for d in seen["train"])
    assert seen["eval"] and all(d == 1 for d in seen["eval"])
    assert [k["num_workers"] for k in seen["loader"]] == [0]
    assert depth["now"] == 0


def test_resources_change_nothing_on_cpu(fraction_calls) -> None:
    """On CPU a trial's GPU share and CPU count leave its results bit-identical."""
    config = {"method": "ft", "data": TINY, "train": {"epochs": 1, "batch_size": 40}, "seed": 3}
    plain = loop.run(config)
    shared = loop.run({**config, "resources": {"cpu": 4, "gpu": 0.25}})
    assert shared == plain
    assert fraction_calls == []


def test_file_backed_training_data_uses_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for domain in ("real", "sketch"):
        rows: dict[str, list[str]] = {"train": [], "test": []}
        for k, name in enumerate(("bee", "zebra")):
            folder = tmp_path / domain / name
            folder.mkdir(parents=True)
            for i in range(24):  # 20 train images, about 2 of which the path hash carves out for val
                Image.new("RGB", (36, 40), (k * 120, i * 10, 90)).save(folder / f"{i}.png")
                rows["train" if i < 20 else "test"].append(f"{domain}/{name}/{i}.png")
        for split, lines in rows.items():  # DomainNet-style split files
            (tmp_path / f"{domain}_{split}.txt").write_text("".join(f"{r} 0\n" for r in lines))
    workers: list[int] = []
    real_loader = training.DataLoader

    def loader(*args, **kwargs):
        workers.append(kwargs["num_workers"])
        return real_loader(*args, **kwargs)

    monkeypatch.setattr(training, "DataLoader", loader)
    data = {"source": {"imagefolder": str(tmp_path)}, "id": "real", "ood": ["sketch"]}
    metrics = loop.run({"method": "ft", "data": data, "train": {"epochs": 1, "batch_size": 8}, "resources": {"cpu": 2}})
    assert workers == [1]
    assert 0 <= metrics["id/acc"] <= 1 and metrics["train/loss"] > 0
