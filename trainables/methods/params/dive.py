"""DiVE's declaration: the weight of its two losses, the EMA momentum, the reference pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("dive")
class DiveParams(MethodParams):
    """FLYP with fine-tuning kept close to a rigid, modality-shared translation on reference pairs."""

    interpolable: ClassVar[bool] = True

    paper = (
        "Suzuki et al. Difference Vector Equalization for Robust Fine-tuning of Vision-Language "
        "Models. AAAI 2026 (arXiv 2511.09973)"
    )
    # FLYP's recipe, which DiVE builds on [R]: AdamW lr 1e-5, wd 0.1, batch 512, 10 epochs.
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"weight_decay": 0.1},
        "clip": {"lr": 1e-5, "weight_decay": 0.1, "warmup": 0.02},
    }

    lam: float = Field(1000.0, ge=0, description="weight of AVL + PVL (paper: 1000, from {100, 500, 1000, 2500, 5000})")
    alpha: float = Field(0.99, ge=0, lt=1, description="EMA momentum of the common difference vector m (0: batch mean)")
    ref_batch_size: int = Field(
        64, ge=1, description="B', reference image-caption pairs per step [R: unknown in the paper]"
    )
    normalize: bool = Field(
        True, description="difference vectors of L2-normalised embeddings [R]; False: raw embeddings"
    )
    reference: str | None = Field(
        None,
        description="reference pairs: null = the zoo model's own pretraining distribution; else a TSV/CSV "
        "caption file with image and caption columns, image paths relative to the file",
    )

    def check_model(self, context_length: int) -> None:
        # A missing file, a bad header or a missing image is reported at sweep validation.
        if self.reference is not None:
            # Imported only for a caption file: the module needs torch to build the pairs.
            from trainables.data.reference_pairs import read_caption_file

            read_caption_file(Path(self.reference), "reference")
