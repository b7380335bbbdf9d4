"""Shared machinery of FLYP-style contrastive fine-tuning (FLYP, DiVE).

Each training image is paired with a class-prompt caption ``template(classname)``, with a template
drawn at random per image and step (FLYP's CSV holds one row per (image, template), so a batch is a
random set of such pairs). Both towers and the logit scale are trained with open_clip's symmetric
InfoNCE (``ClipLoss``); same-class duplicates in a batch count as negatives, as in FLYP.

At evaluation the classifier is the zero-shot head rebuilt from the *fine-tuned* text tower with
the trial's templates, scaled by the trained temperature: ``exp(logit_scale) * F(x) @ W``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from trainables.methods.base import Method, TrialContext
from trainables.methods.params.base import MethodParams
from trainables.models.heads import zero_shot_head

# open_clip is imported where it is used: its import takes seconds, which `sweeper validate` and
# `sweeper methods` (they import this module) should not pay.

# CLIP clamps its temperature at 100 during pretraining; we keep the same bound when fine-tuning
# (the FLYP code does not clamp; with its lr of 1e-5 the bound is never reached in practice).
MAX_LOG_SCALE = math.log(100)


def class_captions(
    labels: torch.Tensor, classnames: Sequence[str], templates: Sequence[str], generator: torch.Generator
) -> list[str]:
    """One caption per image: a template drawn uniformly (from ``generator``) filled with its class."""
    choice = torch.randint(len(templates), (len(labels),), generator=generator)
    return [templates[j].format(classnames[c]) for c, j in zip(labels.tolist(), choice.tolist(), strict=True)]


def contrastive_loss(image_features: torch.Tensor, text_features: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over L2-normalised features, diagonal positives (open_clip ``ClipLoss``)."""
    import open_clip

    return open_clip.ClipLoss()(image_features, text_features, scale)


class ContrastiveFineTune(Method):
    """Both CLIP towers and the logit scale trained with the FLYP loss; see the module docstring."""

    def __init__(self, context: TrialContext, params: MethodParams) -> None:
        super().__init__(context, params)
        self.model = context.bundle.model
        # Every parameter trains, the logit scale included (FLYP optimises all of model.parameters()).
        self.model.requires_grad_(True)
        # The evaluation head: built lazily in eval mode, dropped whenever the towers may change. A
        # plain attribute, not a buffer, so it is never checkpointed and never goes stale on restore.
        self._eval_head: torch.Tensor | None = None

    def train(self, mode: bool = True) -> ContrastiveFineTune:
        super().train(mode)
        self._eval_head = None  # the text tower may have moved since the head was built
        return self

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        self._eval_head = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def scale(self) -> torch.Tensor:
        """exp(logit_scale), bounded at 100 as in CLIP."""
        return self.model.logit_scale.clamp(0, MAX_LOG_SCALE).exp()

    def flyp_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The FLYP term on one batch of (image, class-prompt caption) pairs."""
        with torch.no_grad():  # keep the stored temperature inside CLIP's bound, as CLIP does
            self.model.logit_scale.clamp_(0, MAX_LOG_SCALE)
        context = self.context
        captions = class_captions(labels, context.classnames, context.templates, context.generator)
        tokens = context.bundle.tokenizer(captions).to(images.device)
        image_features = self.model.encode_image(images, normalize=True)
        text_features = self.model.encode_text(tokens, normalize=True)
        return contrastive_loss(image_features, text_features, self.model.logit_scale.exp())

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        flyp = self.flyp_loss(images, labels)
        return {"loss": flyp, "flyp": flyp}

    def class_head(self) -> torch.Tensor:
        """Zero-shot head [D, K] of the current text tower; cached while in eval mode only."""
        if self.training or self._eval_head is None:
            bundle = self.context.bundle
            head = zero_shot_head(self.model, bundle.tokenizer, self.context.classnames, self.context.templates)
            if self.training:
                return head
            self._eval_head = head
        return self._eval_head

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        features = F.normalize(self.model.encode_image(images), dim=-1)
        return self.scale() * features @ self.class_head()
