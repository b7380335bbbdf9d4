"""FT's declaration: no hyperparameters of its own (lr, weight decay and epochs belong to the loop)."""

from __future__ import annotations

from typing import ClassVar

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("ft")
class FTParams(MethodParams):
    """Cross-entropy on ``s * F_theta(x) @ W``, training the image tower and W."""

    interpolable: ClassVar[bool] = True

    paper = "end-to-end fine-tuning, as in Wortsman et al., CVPR 2022 and Nam et al., ICLR 2024"
