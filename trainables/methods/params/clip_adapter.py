"""CLIP-Adapter's declaration: the bottleneck's reduction and the residual ratio; CoOp's SGD recipe,
at a larger learning rate on the tiny zoo [R]."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from trainables.methods.params._adapter import AdapterParams
from trainables.recipes import PROMPT_SGD, TINY_PROMPT_SGD
from trainables.registry import register_params

# The tiny zoo's learning rate [R]: CoOp's 2e-3 leaves the adapter at zero-shot there (see the
# method's docstring). Chosen on photo's ID validation split (val/acc), seed 0, in
# paper-contcoop's setting (6 epochs, 200 training images per class; 375 steps) among 2e-3, 2e-2,
# 0.1, 0.25, 0.5 and 1.0.
TINY_LR = 0.5


@register_params("clip_adapter")
class ClipAdapterParams(AdapterParams):
    """A residual bottleneck MLP on the frozen image features; CE on the hand-written text head."""

    paper = "Gao et al., IJCV 2023 (CLIP-Adapter; gaopengcuhk/CLIP-Adapter)"
    # The repo's README says to run it with CoOp's commands, i.e. CoOp's Dassl config [C]: SGD at
    # lr 2e-3, batch 32, 200 epochs (16 shots), one constant warm-up epoch at 1e-5, cosine. The
    # tiny zoo keeps the optimiser at a larger lr (TINY_LR) [R].
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TINY_PROMPT_SGD, "batch_size": 32, "lr": TINY_LR},
        "clip": {**PROMPT_SGD, "batch_size": 32, "epochs": 200},
    }

    ratio: float = Field(
        0.2, ge=0, le=1, description="residual ratio alpha: x' = alpha A(x) + (1 - alpha) x (0.2 in the code)"
    )
    reduction: int = Field(4, ge=1, le=64, description="bottleneck reduction: A maps d -> d / reduction -> d")
