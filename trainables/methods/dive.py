"""DiVE (Suzuki et al., AAAI 2026; arXiv 2511.09973): difference vector equalization.

FLYP (both towers, class-prompt captions, see ``flyp.py``) plus, on B' reference image-caption
pairs (x_j, t_j) per step, regularisers on the difference vectors between the fine-tuned and the
frozen pre-trained towers:

    u_j   = f_ft(x_j) - f_pre(x_j)                   v_j = g_ft(t_j) - g_pre(t_j)
    m    <- alpha * m + (1 - alpha) * sg( mean_j (u_j + v_j) / 2 ),   m_0 = 0
    AVL   = mean_j ( ||u_j - m||^2 + ||v_j - m||^2 )  (global: all vectors near one shift m)
    PVL   = mean_j ||u_j - v_j||^2                    (local: paired image and text move alike)
    L     = L_FLYP + lam * (AVL + PVL)                lam = 1000, alpha = 0.99

The formulas and lam, alpha, m_0 come from secondary sources (no public code). Reconstructed [R]:
the EMA form above, one m shared by both sides, m updated with the current batch before it enters
AVL; L2-normalised embeddings (``normalize``); B' = 64; reference images not augmented; FLYP's
weight decay 0.1 (FLYP's recipe, in ``recipes``).
"""

from __future__ import annotations

import copy

import torch

from trainables.data.reference_pairs import reference_pairs
from trainables.methods._contrastive import ContrastiveFineTune
from trainables.methods.base import TrialContext
from trainables.methods.params.dive import DiveParams
from trainables.models.heads import ClipEncoders
from trainables.registry import register


def difference_vector_losses(u: torch.Tensor, v: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(AVL, PVL) of image-side ``u`` and text-side ``v`` difference vectors [B', D] and shift ``m`` [D]."""
    avl = ((u - m).pow(2).sum(dim=1) + (v - m).pow(2).sum(dim=1)).mean()
    pvl = (u - v).pow(2).sum(dim=1).mean()
    return avl, pvl


def ema_update(m: torch.Tensor, u: torch.Tensor, v: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha * m + (1 - alpha) * mean_j (u_j + v_j) / 2, with no gradient into the batch."""
    batch_mean = ((u + v) / 2).mean(dim=0).detach()
    return alpha * m + (1 - alpha) * batch_mean


@register("dive")
class Dive(ContrastiveFineTune):
    """FLYP with fine-tuning kept close to a rigid, modality-shared translation on reference pairs."""

    Params = DiveParams
    params: DiveParams
    checkpoint_buffers = ("m",)
    m: torch.Tensor  # buffer, registered in __init__: the EMA translation vector

    def __init__(self, context: TrialContext, params: DiveParams) -> None:
        super().__init__(context, params)
        # The pre-trained towers f_pre, g_pre: a frozen copy of the whole model, never optimised.
        self.pretrained = copy.deepcopy(self.model).requires_grad_(False).eval()
        with torch.no_grad():  # the embedding width, read off the model whatever its architecture
            dim = self.model.encode_text(context.bundle.tokenizer([""]).to(context.device)).shape[-1]
        self.register_buffer("m", torch.zeros(dim, device=context.device))
        self.reference = reference_pairs(params.reference, context.bundle, "params.reference")

    def train(self, mode: bool = True) -> Dive:
        super().train(mode)
        self.pretrained.eval()
        return self

    def _embed(
        self, model: ClipEncoders, images: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        normalize = self.params.normalize
        return model.encode_image(images, normalize=normalize), model.encode_text(tokens, normalize=normalize)

    def reference_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(AVL, PVL) on a fresh reference batch; updates m."""
        images, captions = self.reference.sample(self.params.ref_batch_size, self.context.generator)
        images = images.to(self.m.device)
        tokens = self.context.bundle.tokenizer(captions).to(self.m.device)
        with torch.no_grad():
            f_pre, g_pre = self._embed(self.pretrained, images, tokens)
        f_ft, g_ft = self._embed(self.model, images, tokens)
        u, v = f_ft - f_pre, g_ft - g_pre
        self.m.copy_(ema_update(self.m, u, v, self.params.alpha))
        return difference_vector_losses(u, v, self.m)

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        flyp = self.flyp_loss(images, labels)
        avl, pvl = self.reference_terms()
        loss = flyp + self.params.lam * (avl + pvl)
        return {"loss": loss, "flyp": flyp, "avl": avl, "pvl": pvl}
