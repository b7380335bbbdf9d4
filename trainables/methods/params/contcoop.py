"""ContCoOp's declaration: the KD weight, the class embedding, and the fusion's form and init [R]."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from trainables.methods.params._prompt import KDParams
from trainables.recipes import PROMPT_SGD, TINY_PROMPT_SGD
from trainables.registry import register_params


@register_params("contcoop")
class ContCoOpParams(KDParams):
    """A context re-conditioned on each class's embedding in the current model."""

    paper = "Wang et al., arXiv 2412.20895 (ContCoOp)"
    # KgCoOp's recipe [R: the paper's is unknown]: SGD at lr 2e-3, batch 128, 100 epochs.
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TINY_PROMPT_SGD, "batch_size": 128},
        "clip": {**PROMPT_SGD, "batch_size": 128, "epochs": 100},
    }

    lam: float = Field(8.0, ge=0, description="weight of the KD term 1 - mean_c cos(w_c, w_c^zs) [R]")
    class_embedding: Literal["tokens", "text_feature"] = Field(
        "text_feature",
        description=(
            "E_c: the zero-shot text feature w_c^zs of the kd_templates (1 x D; the paper's hint), or "
            "the class name's token embeddings (L_c x D) [R]; both from the current model"
        ),
    )
    residual: bool = Field(
        False, description=("p~_c = p + attention output instead of the output alone, O[:N] (the paper's) [R]")
    )
    attention_init: Literal["kaiming", "identity"] = Field(
        "kaiming",
        description=(
            "W_Q, W_K, W_V, W_O: nn.Linear's Kaiming-uniform init (the paper's), or identity (W_O zero "
            "with the residual: the prompt starts at the hand-written one) [R]"
        ),
    )
