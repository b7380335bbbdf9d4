"""Lipsum-FT's declaration: random-text length L and count M, the regulariser's form and weight."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from trainables.errors import InputError
from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("lipsum_ft")
class LipsumParams(MethodParams):
    """FT whose image tower is kept close to zero-shot in energy on random texts."""

    interpolable: ClassVar[bool] = True

    paper = "Nam, Heo and Lee, ICLR 2024 (Lipsum-FT); regulariser from cs-giung/lipsum-ft"
    # The released code's recipe [C: cs-giung/lipsum-ft]: AdamW lr 1e-5, weight decay 0, batch
    # 256, no clipping, 10 % linear warm-up then cosine; 5,000 DomainNet steps (about 10 epochs).
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "clip": {"lr": 1e-5, "weight_decay": 0.0, "batch_size": 256, "grad_clip": None}
    }

    L: int = Field(8, ge=1, description="random-text length in tokens (SOT and EOT excluded)")
    M: int = Field(80, ge=1, description="random texts per step")
    loss: Literal["mse", "kld"] = Field("mse", description="regulariser form")
    lam: float = Field(1.0, ge=0, description="regulariser weight")
    tau: float = Field(1.0, gt=0, description="softmax temperature of the kld form")
    text_bank: int = Field(
        0,
        ge=0,
        description=("0: M fresh random texts per step (the paper); N >= M: N texts encoded once, M drawn per step"),
    )

    def check_model(self, context_length: int) -> None:
        if context_length < self.L + 2:
            raise InputError("L", f"L + 2 = {self.L + 2} exceeds the model's text context length {context_length}")
        if 0 < self.text_bank < self.M:
            raise InputError("text_bank", f"a bank of {self.text_bank} texts cannot supply M = {self.M} per step")
