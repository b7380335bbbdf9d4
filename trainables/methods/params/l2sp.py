"""L2-SP's declaration: the weights of its two penalties, which tensors it anchors, the head's treatment."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("l2sp")
class L2spParams(MethodParams):
    """FT with an L2 penalty pulling the image tower towards its zero-shot weights theta_0."""

    interpolable: ClassVar[bool] = True
    # The penalty replaces weight decay (the official code has one or the other): no decoupled decay
    # on real CLIP, whose base recipe has 0.1; the tiny base has none.
    recipes: ClassVar[dict[str, dict[str, Any]]] = {"clip": {"weight_decay": 0.0}}

    paper = (
        "Li, Grandvalet and Davoine. Explicit Inductive Bias for Transfer Learning with Convolutional "
        "Networks. ICML 2018 (L2-SP; holyseven/TransferLearningClassification); a Lipsum-FT baseline"
    )

    lam: float = Field(
        0.1, ge=0, description="alpha: weight of (alpha / 2) * ||theta - theta_0||^2 (official run: 0.1)"
    )
    beta: float = Field(
        0.01, ge=0, description="weight of (beta / 2) * ||W||^2 on the head when head = l2 (official run: 0.01)"
    )
    tensors: Literal["weights", "all"] = Field(
        "weights",
        description="anchored encoder tensors: weights = matrices and kernels (>= 2 dims), as the official "
        "default; all = biases and norms too [R]",
    )
    head: Literal["l2", "sp", "none"] = Field(
        "l2",
        description="the head W: l2 = plain (beta / 2) * ||W||^2, the paper's new layer; sp = anchored to the "
        "zero-shot head with the encoder [R]; none = unpenalised",
    )
