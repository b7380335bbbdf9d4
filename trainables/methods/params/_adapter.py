"""Shared declarations of the image-side adapters on frozen CLIP (CLIP-Adapter, Tip-Adapter,
Tip-Adapter-F): the text head's templates, the model to carry the adapter to, and the cache."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from trainables.methods.params._prompt import ModelSpec, check_upgrade_model
from trainables.methods.params.base import MethodParams


class AdapterParams(MethodParams):
    """A module on the frozen model's image features, with a fixed hand-written text head."""

    logs: ClassVar[tuple[str, ...]] = ("compat/",)  # with upgrade_model set

    templates: Literal["single", "ensemble"] = Field(
        "single",
        description="text head from the one template (CLIP-Adapter's CUSTOM_TEMPLATES) or the source's ensemble",
    )
    template: str = Field(
        "a photo of a {}.",
        pattern=r"^[^{}]*\{\}[^{}]*$",
        description="the template of templates: single (the ImageNet entry of CUSTOM_TEMPLATES)",
    )
    upgrade_model: ModelSpec | None = Field(
        None,
        description=(
            "model spec (zoo/<name> or {arch, pretrained}) to carry the trained adapter to, unchanged, "
            "after training, for the compat/* metrics; it must have the same image-feature dimension"
        ),
    )

    def check_model(self, context_length: int) -> None:
        if self.upgrade_model is not None:
            check_upgrade_model(self.upgrade_model)


class CacheParams(AdapterParams):
    """Tip-Adapter's key-value cache of the few-shot training set, mixed into the zero-shot logits."""

    templates: Literal["single", "ensemble"] = Field(
        "ensemble",
        description="zero-shot head from the source's ensemble (Tip-Adapter's clip_classifier) or one template",
    )
    alpha: float = Field(1.0, ge=0, description="residual ratio alpha of the cache logits (init_alpha)")
    beta: float = Field(1.0, gt=0, description="sharpness beta of the affinities exp(-beta (1 - f K^T)) (init_beta)")
    augment_epochs: int = Field(
        10,
        ge=0,
        le=100,
        description="augmented views per training image averaged into its key (augment_epoch); 0: the plain view [R]",
    )
