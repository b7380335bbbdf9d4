"""TPGM's declaration: the projection norm, and how the per-layer radii are fitted on validation data."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("tpgm")
class TpgmParams(MethodParams):
    """FT, then each layer projected towards zero-shot within a radius learned on validation data."""

    interpolable: ClassVar[bool] = True
    logs: ClassVar[tuple[str, ...]] = ("tpgm/",)

    paper = "Tian et al. Trainable Projected Gradients for Robust Fine-Tuning. CVPR 2023 (TPGM; PotatoTian/TPGM)"

    norm: Literal["l2", "mars"] = Field(
        "l2",
        description="per-layer distance: l2 (the official CLIP ViT run) or mars, the maximum absolute row sum "
        "(each row's L1 norm, the official ResNet runs)",
    )
    proj_lr: float = Field(1e-2, gt=0, description="Adam learning rate of the radii (official: 1e-2)")
    max_iters: int = Field(
        200, ge=0, description="Adam steps on validation batches that fit the radii (official CLIP run: 200)"
    )
    batch_size: int = Field(64, ge=1, description="validation images per radius step (official: 64)")
    project_head: bool = Field(
        True,
        description="project the head too (official CLIP run: its zero-shot head is a projected layer); "
        "false leaves the fine-tuned head as it is (official ResNet runs, whose head is new)",
    )
