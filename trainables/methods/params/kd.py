"""KD's declaration: what is distilled (zero-shot predictions or image features), its weight and temperature."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("kd")
class KdParams(MethodParams):
    """FT distilled towards the frozen zero-shot model's predictions (or image features)."""

    interpolable: ClassVar[bool] = True

    paper = "knowledge distillation to the zero-shot model, a baseline of Nam, Heo and Lee, ICLR 2024 (Lipsum-FT)"

    lam: float = Field(1.0, ge=0, description="weight of the distillation term [R: the paper's lam_KD is unknown]")
    target: Literal["logits", "features"] = Field(
        "logits",
        description="logits: tau^2 * KL(p_zs || p_theta) over the classes with the zero-shot head [R, the "
        "reference's form]; features: ||F_theta(x) - F_zs(x)||^2 of the normalised image features [R]",
    )
    tau: float = Field(1.0, gt=0, description="softmax temperature of the logits form [R]")
