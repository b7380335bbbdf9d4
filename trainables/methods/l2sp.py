"""L2-SP (Li, Grandvalet and Davoine, ICML 2018), a baseline of Lipsum-FT's tables.

FT (image tower + zero-shot-initialised head W, CE with the fixed pretrained s) plus an L2
penalty towards the starting point instead of towards zero:

    L = CE + (lam / 2) * sum_l ||theta_l - theta0_l||^2 + (beta / 2) * ||W||^2      (head = "l2")

theta0 is the frozen zero-shot image tower (``AnchoredClassifier``). The official code
[C: holyseven/TransferLearningClassification ``model/network_base.py`` ``_decay`` mode 1,
``run_classification/train.sh``] applies ``alpha * l2_loss(v - v0)`` (TF's l2_loss is half the
squared norm) to every pretrained tensor named ``weights`` and ``beta * l2_loss(v)`` to the new
classifier, with alpha = 0.1, beta = 0.01; biases and batch-norm parameters are not penalised
(its mode 101 penalises them too). Those are the defaults here: ``lam`` = alpha, ``beta``,
``tensors: weights`` (tensors of two or more dims: linear and conv weights, the ViT's positional
embedding and projection [R: the TF name filter mapped onto open_clip]). The reference spec
(methods-lipsum-ft-dive.md §3.8) gives only "CE + lam * ||theta - theta0||^2 over the encoder
weights" [R]; Lipsum-FT's lam_L2SP is unknown.

The head is the paper's open question for CLIP: L2-SP treats the classifier as a new layer (plain
weight decay, ``head: l2``), but in CLIP fine-tuning W starts at the zero-shot text head, which is
pretrained too; ``head: sp`` anchors it to W_0 with the same lam [R], ``head: none`` leaves it to
the loop's weight decay. The penalty replaces weight decay in the paper, so the recipe sets the
loop's own decay to 0 on real CLIP (the tiny base has none).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainables.methods._anchored import AnchoredClassifier
from trainables.methods.base import TrialContext
from trainables.methods.params.l2sp import L2spParams
from trainables.registry import register


def squared_distance(current: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum over the tensors of ``current`` of ||current - anchor||^2 (``anchor`` has the same names)."""
    return torch.stack([((t - anchor[n]) ** 2).sum() for n, t in current.items()]).sum()


@register("l2sp")
class L2sp(AnchoredClassifier):
    """FT with an L2 penalty pulling the image tower towards its zero-shot weights theta_0."""

    Params = L2spParams
    params: L2spParams
    head_zero_shot: torch.Tensor  # buffer, registered in __init__: W_0, the anchor of head = sp

    def __init__(self, context: TrialContext, params: L2spParams) -> None:
        super().__init__(context, params)
        self.register_buffer("head_zero_shot", self.head.detach().clone())
        keep = (lambda t: t.dim() >= 2) if params.tensors == "weights" else (lambda t: True)
        self.anchored = [n for n, p in self.model.visual.named_parameters() if p.requires_grad and keep(p)]

    def penalty(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(||theta - theta_0||^2 over the anchored tower tensors, the head's term before its weight)."""
        current = dict(self.model.visual.named_parameters())
        anchor = dict(self.visual_zero_shot.named_parameters())
        sp = squared_distance({n: current[n] for n in self.anchored}, anchor)
        head = self.params.head
        if head == "sp":
            return sp + ((self.head - self.head_zero_shot) ** 2).sum(), self.head.new_zeros(())
        if head == "l2":
            return sp, (self.head**2).sum()
        return sp, self.head.new_zeros(())

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(self.logits(images), labels)
        sp, head = self.penalty()
        loss = ce + self.params.lam / 2 * sp + self.params.beta / 2 * head
        return {"loss": loss, "ce": ce, "sp": sp, "head_l2": head}
