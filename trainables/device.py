"""What a trial may use of its machine: its GPU share, bf16 autocast on CUDA, data-loading workers.

A sweep's ``resources: {cpu, gpu}`` reach the trial as :class:`trainables.config.TrialResources`. On CUDA the trial
caps its caching allocator at its GPU share (Ray packs fractional trials onto one GPU but does not
limit their memory), runs its forward passes under bf16 autocast, and loads file-backed images
with ``cpu - 1`` worker processes. On CPU every one of these is a no-op, so CPU results do not
change, unless the sweep asks for ``train.precision: bf16``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from trainables.config import Precision


def share_gpu(device: torch.device, gpu: float) -> float | None:
    """Cap this process's CUDA memory at the trial's GPU share (0.25 -> a quarter of the device).

    Returns the fraction set, or None when nothing was capped: a CPU device, or no GPU requested
    (a trial run outside Ray that owns the whole device). A share above one GPU caps nothing (1.0).
    The cap covers the caching allocator only; each process's CUDA context (a few hundred MB) comes
    on top of it.
    """
    if device.type != "cuda" or gpu <= 0:
        return None
    fraction = min(1.0, float(gpu))
    # torch wants an index here: a bare "cuda" device means the current one.
    index = device.index if device.index is not None else torch.cuda.current_device()
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    return fraction


def autocast(device: torch.device, precision: Precision = "auto") -> contextlib.AbstractContextManager[Any]:
    """The forward passes' precision: ``auto`` is bf16 autocast on a CUDA device that supports bf16
    and fp32 elsewhere, ``fp32`` never autocasts, ``bf16`` autocasts on any device.

    Use a fresh context for each forward pass and run ``backward()`` outside it. bf16 keeps fp32's
    exponent range, so no loss scaling is needed. On a CPU, ``bf16`` pays off only where the CPU
    has bf16 instructions (AVX512-BF16, AMX): there it trains the tiny zoo about 1.4x faster.
    """
    if precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def loader_workers(in_memory: bool, cpus: float) -> int:
    """Data-loading worker processes: none for in-memory tensors (slicing beats IPC), else one per
    CPU of the trial beyond the one that trains."""
    if in_memory:
        return 0
    return max(0, int(cpus) - 1)


def loader_options(in_memory: bool, cpus: float, device: torch.device) -> dict[str, Any]:
    """``DataLoader`` keyword arguments for a trial's data: workers, and pinned memory when
    workers feed a CUDA device."""
    workers = loader_workers(in_memory, cpus)
    return {"num_workers": workers, "pin_memory": workers > 0 and device.type == "cuda"}
