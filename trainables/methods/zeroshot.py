"""Zero-shot CLIP: the pretrained model with its prompt-ensemble head, no training."""

from __future__ import annotations

from trainables.methods.base import ImageClassifier
from trainables.registry import register


@register("zeroshot")
class ZeroShot(ImageClassifier):
    """Evaluates ``s * F(x) @ W_zs``; the reference point every fine-tuning method moves from."""

    trains = False
    frozen_image_tower = True
    paper = "Radford et al., ICML 2021 (CLIP)"
