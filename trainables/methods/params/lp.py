"""The linear probe's declaration: the head's start, and the solver with its C grid."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("lp")
class LPParams(MethodParams):
    """CE on ``s * F_theta0(x) @ W`` with the image tower frozen; only W is trained."""

    logs: ClassVar[tuple[str, ...]] = ("lp/",)

    paper = "Radford et al., ICML 2021 (CLIP linear probe); Kumar et al., ICLR 2022"
    # The AdamW LP recipe: lr 0.01, wd 1e-4, batch 256, 10 epochs [RM: giung2-dev projects/clip].
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"lr": 1e-2, "weight_decay": 1e-4},
        "clip": {"lr": 1e-2, "weight_decay": 1e-4, "batch_size": 256, "grad_clip": None},
    }

    init: Literal["zeroshot", "zeros"] = Field(
        "zeroshot", description="initial head W: the zero-shot prompt-ensemble head, or all zeros (adamw)"
    )
    solver: Literal["adamw", "lbfgs"] = Field(
        "adamw",
        description=(
            "adamw: W trained in the loop (the AdamW LP recipe); lbfgs: a scikit-learn logistic "
            "regression fitted before training, C chosen on ID validation (Kumar et al., FLYP) [R: default]"
        ),
    )
    C_min: float = Field(0.1, gt=0, description="lbfgs: smallest inverse regularisation C of the grid (FLYP's)")
    C_max: float = Field(
        1e4, gt=0, description=("lbfgs: largest C of the grid [R: FLYP's 1e2, widened for unit-norm features]")
    )
    C_steps: int = Field(16, ge=1, le=200, description="lbfgs: log-spaced C values tried, warm-started [R]; FLYP: 100")
    C: float = Field(100.0, gt=0, description="lbfgs: the C used when the trial has no validation split [R]")

    @model_validator(mode="after")
    def _grid(self) -> LPParams:
        if self.C_min > self.C_max:
            raise ValueError(f"C_min {self.C_min} exceeds C_max {self.C_max}")
        return self
