"""Zero-shot CLIP's declaration: which templates build its head; it does not train."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("zeroshot")
class ZeroShotParams(MethodParams):
    """Evaluates ``s * F(x) @ W_zs``; the reference point every fine-tuning method moves from."""

    paper = "Radford et al., ICML 2021 (CLIP)"
    trains = False

    templates: Literal["ensemble", "single"] = Field(
        "ensemble", description=("head from the data source's template ensemble (CLIP), or from the one template")
    )
    template: str = Field(
        "a photo of a {}.",
        pattern=r"^[^{}]*\{\}[^{}]*$",
        description=("the template of templates: single (the prompt methods' kd_template default)"),
    )
