"""CAR-FT's declaration: the context KL's weight, scale and direction [R]."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("car_ft")
class CarFtParams(MethodParams):
    """FT with the image tower's context distribution kept close to the zero-shot one."""

    interpolable: ClassVar[bool] = True

    paper = "Mao et al. Context-Aware Robust Fine-Tuning. IJCV 2023 (arXiv 2211.16175)"

    lam: float = Field(1.0, ge=0, description="weight of the context KL term [R: the paper's value is unknown]")
    scale_c: float | None = Field(
        None,
        gt=0,
        le=1000,
        description=(
            "scale s_c of the context logits; null = the model's logit scale s (CLIP: 100) [R], 1 = unscaled cosine"
        ),
    )
    direction: Literal["zs_to_ft", "ft_to_zs"] = Field(
        "zs_to_ft", description="zs_to_ft: KL(p_zero_shot || p_fine_tuned) [R]; ft_to_zs: KL(p_ft || p_zs)"
    )
