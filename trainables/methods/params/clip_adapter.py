"""CLIP-Adapter's declaration: the bottleneck's reduction and the residual ratio, CoOp's recipe [R]."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from trainables.methods.params._adapter import AdapterParams
from trainables.recipes import PROMPT_SGD, TINY_PROMPT_SGD
from trainables.registry import register_params


@register_params("clip_adapter")
class ClipAdapterParams(AdapterParams):
    """A residual bottleneck MLP on the frozen image features; CE on the hand-written text head."""

    paper = "Gao et al., IJCV 2023 (CLIP-Adapter; gaopengcuhk/CLIP-Adapter)"
    # The repo's README says to run it with CoOp's commands, i.e. CoOp's Dassl config [R]: SGD at
    # lr 2e-3, batch 32, 200 epochs (16 shots), one constant warm-up epoch at 1e-5, cosine.
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TINY_PROMPT_SGD, "batch_size": 32},
        "clip": {**PROMPT_SGD, "batch_size": 32, "epochs": 200},
    }

    ratio: float = Field(
        0.2, ge=0, le=1, description="residual ratio alpha: x' = alpha A(x) + (1 - alpha) x (0.2 in the code)"
    )
    reduction: int = Field(4, ge=1, le=64, description="bottleneck reduction: A maps d -> d / reduction -> d")
