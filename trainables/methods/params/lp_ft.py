"""LP-FT's declaration: the LP stage's solver, its AdamW settings and its C grid."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("lp_ft")
class LPFTParams(MethodParams):
    """FT of the image tower and W, with W first fitted as a linear probe on frozen features."""

    logs: ClassVar[tuple[str, ...]] = ("lp/",)

    interpolable: ClassVar[bool] = True

    paper = "Kumar et al., ICLR 2022 (LP-FT)"

    lp_epochs: int = Field(10, ge=1, le=1000, description="epochs of the LP stage over the cached features")
    lp_lr: float = Field(0.01, gt=0, le=1, description="AdamW learning rate of the LP stage (constant)")
    lp_weight_decay: float = Field(1e-4, ge=0, le=1, description="AdamW weight decay of the LP stage")
    lp_batch_size: int = Field(256, ge=1, description="mini-batch size of the LP stage")
    lp_solver: Literal["lbfgs", "adamw"] = Field(
        "lbfgs",
        description=(
            "LP stage: scikit-learn logistic regression with C chosen on ID validation (Kumar et al., "
            "FLYP), or AdamW on CE (lp_epochs, lp_lr, lp_weight_decay, lp_batch_size)"
        ),
    )
    lp_C_min: float = Field(0.1, gt=0, description="lbfgs: smallest inverse regularisation C of the grid (FLYP's)")
    lp_C_max: float = Field(
        1e4, gt=0, description=("lbfgs: largest C of the grid [R: FLYP's 1e2, widened for unit-norm features]")
    )
    lp_C_steps: int = Field(
        16, ge=1, le=200, description=("lbfgs: log-spaced C values tried, warm-started [R]; FLYP: 100")
    )
    lp_C: float = Field(100.0, gt=0, description="lbfgs: the C used when the trial has no validation split [R]")

    @model_validator(mode="after")
    def _grid(self) -> LPFTParams:
        if self.lp_C_min > self.lp_C_max:
            raise ValueError(f"lp_C_min {self.lp_C_min} exceeds lp_C_max {self.lp_C_max}")
        return self
