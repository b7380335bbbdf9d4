"""WiSE-FT's declaration: the mixing weight alpha and the step of the evaluated curve."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("wise_ft")
class WiseParams(MethodParams):
    """FT whose final weights are interpolated towards the zero-shot weights."""

    logs: ClassVar[tuple[str, ...]] = ("wise/",)

    interpolable: ClassVar[bool] = True

    paper = "Wortsman et al., CVPR 2022 (WiSE-FT)"

    alpha: float = Field(0.5, ge=0, le=1, description="weight of the fine-tuned model in the final mix")
    curve_step: float = Field(0.1, ge=0.01, le=1, description="alpha step of the evaluated curve; must divide 1")

    @model_validator(mode="after")
    def _step_divides_one(self) -> WiseParams:
        steps = round(1 / self.curve_step)
        if abs(steps * self.curve_step - 1) > 1e-6:
            raise ValueError(f"curve_step {self.curve_step} must divide 1 (e.g. 0.1, 0.05, 0.25)")
        return self
