"""LoRSU's declaration: rank and alpha, heads k per layer, fc1 sparsity, importance samples."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("lorsu")
class LoRSUParams(MethodParams):
    """CLIP-loss tuning of gradient-selected heads (masked LoRA), fc1 entries, biases and proj."""

    logs: ClassVar[tuple[str, ...]] = ("params/visual_fraction",)

    interpolable: ClassVar[bool] = True

    paper = "Panos, Aljundi, Olmeda Reino and Turner, TMLR 2025 (LoRSU; arXiv 2502.04098, aresPanos/LoRSU)"
    # The reference optimises with plain Adam (AdamW at wd 0) [C]; its CL-5 command: lr 1e-5,
    # batch 16, 5 epochs per session [C: README].
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"weight_decay": 0.0},
        "clip": {"lr": 1e-5, "weight_decay": 0.0, "batch_size": 16, "epochs": 5, "grad_clip": None},
    }

    rank: int = Field(8, ge=1, le=1024, description="LoRA rank r of the head and proj updates")
    alpha: float = Field(8.0, gt=0, description="LoRA alpha; updates are scaled by alpha / r")
    k: int = Field(1, ge=1, description="attention heads updated per layer (at most the model's head count)")
    sparsity: float = Field(0.1, gt=0, le=1, description="fraction of each layer's fc1 weight entries updated")
    importance_samples: int = Field(1000, ge=1, description="minimum images for the gradient importance scores")
