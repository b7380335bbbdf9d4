"""An image classifier that keeps a frozen copy of the zero-shot image tower as its anchor.

Lipsum-FT and CAR-FT both regularise the fine-tuned tower theta towards the zero-shot tower
theta_0 on the same augmented batch; this base holds theta_0 and its no-grad features.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from trainables.methods.base import ImageClassifier, TrialContext
from trainables.methods.params.base import MethodParams


class AnchoredClassifier(ImageClassifier):
    """:class:`ImageClassifier` plus ``visual_zero_shot``: theta_0, frozen and never optimised."""

    def __init__(self, context: TrialContext, params: MethodParams) -> None:
        super().__init__(context, params)
        self.visual_zero_shot = copy.deepcopy(self.model.visual).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> AnchoredClassifier:
        super().train(mode)
        self.visual_zero_shot.eval()  # theta_0 stays in eval mode (no dropout) while theta trains
        return self

    @torch.no_grad()
    def zero_shot_features(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised features of theta_0 on the same (augmented) images."""
        return F.normalize(self.visual_zero_shot(images), dim=-1)
