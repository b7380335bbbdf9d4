"""LoRA's declaration: rank, alpha, dropout, scaling, which towers and which head."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("lora")
class LoRAParams(MethodParams):
    """CE with LoRA on the q, k, v of both towers, or of the image tower only; merged after training."""

    logs: ClassVar[tuple[str, ...]] = ("params/visual_fraction",)

    interpolable: ClassVar[bool] = True

    paper = "Zanella and Ben Ayed, CVPRW 2024 (CLIP-LoRA, MaxZanella/CLIP-LoRA); Hu et al., ICLR 2022 (LoRA)"
    # CLIP-LoRA's AdamW recipe [C: run_utils.py]: lr 2e-4, wd 1e-2, batch 32, no clipping.
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"lr": 2e-4, "weight_decay": 0.01},
        "clip": {"lr": 2e-4, "weight_decay": 0.01, "batch_size": 32, "grad_clip": None},
    }

    rank: int = Field(2, ge=1, le=1024, description="LoRA rank r of each q, k, v update")
    alpha: float = Field(1.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r or alpha / sqrt(r)")
    dropout: float = Field(0.25, ge=0, lt=1, description="dropout on the LoRA input (CLIP-LoRA: 0.25)")
    scaling: Literal["sqrt_rank", "rank"] = Field(
        "sqrt_rank", description="scale alpha / sqrt(r) (CLIP-LoRA's released code) or alpha / r (LoRA paper)"
    )
    train_head: bool = Field(
        False, description="towers image: also train the zero-shot-initialised head (CLIP-LoRA trains no head)"
    )
    towers: Literal["image", "both"] = Field(
        "both",
        description=(
            "LoRA on the q, k, v of every attention layer of both encoders, class weights from the "
            "adapted text tower (CLIP-LoRA), or of the image tower only with the zero-shot head"
        ),
    )
    templates: Literal["ensemble", "single"] = Field(
        "ensemble",
        description=("templates of the class weights: the data source's ensemble [R], or the one template (CLIP-LoRA)"),
    )
    template: str = Field(
        "a photo of a {}.", pattern=r"^[^{}]*\{\}[^{}]*$", description=("the template of templates: single")
    )

    @model_validator(mode="after")
    def _head(self) -> LoRAParams:
        if self.train_head and self.towers == "both":
            raise ValueError("train_head needs towers: image (with both, the text tower gives the class weights)")
        return self
