"""FLYP (Goyal et al., CVPR 2023): fine-tune like you pretrain.

Each image x_i of the batch is paired with a caption t_i = template_j(class(x_i)), j uniform over
the trial's templates. With f = F_theta(x) and g = G_phi(t) L2-normalised and s = exp(logit_scale):

    L = ( CE(s * f @ g^T, I) + CE(s * g @ f^T, I) ) / 2          (open_clip ClipLoss)

All CLIP parameters are trained, both towers and the logit scale, with the loop's AdamW and one
weight decay for every tensor (as in the FLYP code). Unless the trial sets it, that weight decay is
FLYP's 0.1 (its ImageNet recipe); lr and epochs stay the loop's, tuned for the model at hand.
At evaluation the class head W is rebuilt from the fine-tuned text tower with the trial's
templates; logits are ``s * F_theta(x) @ W``.

[R]: the logit scale is clamped to [0, log 100] before each step, as CLIP pretraining does; the
FLYP code leaves it free. A template per image per step stands in for FLYP's one CSV row per
(image, template): the same pairs, drawn with the same probability.
"""

from __future__ import annotations

from trainables.methods._contrastive import ContrastiveFineTune
from trainables.methods.params.flyp import FlypParams
from trainables.registry import register


@register("flyp")
class Flyp(ContrastiveFineTune):
    """Contrastive fine-tuning of both towers on class-prompt captions; zero-shot head at eval."""

    Params = FlypParams
