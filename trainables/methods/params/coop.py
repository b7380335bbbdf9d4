"""CoOp's declaration: N = 16 random context vectors (the reference's ViT-B/16 defaults)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from trainables.methods.params._prompt import PromptParams
from trainables.recipes import PROMPT_SGD, TINY_PROMPT_SGD
from trainables.registry import register_params


@register_params("coop")
class CoOpParams(PromptParams):
    """A shared learnable context in front of every class name; CE only."""

    paper = "Zhou et al., IJCV 2022 (CoOp)"
    # CoOp's vit_b16 config [C]: SGD at lr 2e-3, batch 32, 200 epochs (16 shots), constant warm-up.
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TINY_PROMPT_SGD, "batch_size": 32},
        "clip": {**PROMPT_SGD, "batch_size": 32, "epochs": 200},
    }

    n_ctx: int = Field(16, ge=1, le=64, description="number of learnable context vectors N")
    ctx_init: str = Field(
        "random",
        min_length=1,
        description=(
            '"random": N(0, 0.02^2) vectors; otherwise a phrase of exactly n_ctx tokens whose token '
            'embeddings initialise the context, e.g. "a photo of a" with n_ctx 4'
        ),
    )
