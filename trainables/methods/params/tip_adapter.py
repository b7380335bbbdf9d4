"""Tip-Adapter's declaration: the training-free cache, and the grid search of alpha, beta on val."""

from __future__ import annotations

from pydantic import Field

from trainables.methods.params._adapter import CacheParams
from trainables.registry import register_params


@register_params("tip_adapter")
class TipAdapterParams(CacheParams):
    """Training-free: zero-shot logits plus a cache of the few-shot training features."""

    paper = "Zhang et al., ECCV 2022 (Tip-Adapter; gaopengcuhk/Tip-Adapter)"
    trains = False

    search_hp: bool = Field(
        True,
        description=(
            "grid-search alpha and beta on the ID validation split (search_hp); alpha and beta are then "
            "only the values compared first"
        ),
    )
    search_beta_max: float = Field(7.0, gt=0.1, description="beta grid: 200 values from 0.1 below this (ImageNet: 7)")
    search_alpha_max: float = Field(3.0, gt=0.1, description="alpha grid: 20 values from 0.1 below this (ImageNet: 3)")
