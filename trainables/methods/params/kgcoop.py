"""KgCoOp's declaration: CoOp's prompts from "a photo of a" plus the knowledge-guided weight W."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from trainables.methods.params._prompt import KDParams
from trainables.recipes import PROMPT_SGD, TINY_PROMPT_SGD
from trainables.registry import register_params


@register_params("kgcoop")
class KgCoOpParams(KDParams):
    """CoOp kept close to the hand-written prompt's text features."""

    paper = "Yao et al., CVPR 2023 (KgCoOp)"
    # KgCoOp's vit_b16_ep100_ctxv1 config [C]: SGD at lr 2e-3, batch 128, 100 epochs.
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TINY_PROMPT_SGD, "batch_size": 128},
        "clip": {**PROMPT_SGD, "batch_size": 128, "epochs": 100},
    }

    W: float = Field(8.0, ge=0, description="weight of the knowledge-guided term 1 - mean_c cos(w_c, w_c^zs)")
