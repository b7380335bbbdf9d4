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
from pathlib import Path

import torch
from pydantic import Field

from trainables.data.reference_pairs import read_caption_file, reference_pairs
from trainables.methods._contrastive import ContrastiveFineTune
from trainables.methods.base import MethodParams, TrialContext
from trainables.registry import register


class DiveParams(MethodParams):
    lam: float = Field(1000.0, ge=0, description="weight of AVL + PVL (paper: 1000, from {100, 500, 1000, 2500, 5000})")
    alpha: float = Field(0.99, ge=0, lt=1, description="EMA momentum of the common difference vector m (0: batch mean)")
    ref_batch_size: int = Field(64, ge=1, description="B', reference image-caption pairs per step [R: unknown in the paper]")
    normalize: bool = Field(True, description="difference vectors of L2-normalised embeddings [R]; False: raw embeddings")
    reference: str | None = Field(
        None,
        description="reference pairs: null = the zoo model's own pretraining distribution; else a TSV/CSV "
        "caption file with image and caption columns, image paths relative to the file",
    )


def difference_vector_losses(
    u: torch.Tensor, v: torch.Tensor, m: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
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
    # FLYP's recipe, which DiVE builds on [R]: AdamW lr 1e-5, wd 0.1, batch 512, 10 epochs.
    recipes = {"tiny": {"weight_decay": 0.1}, "clip": {"lr": 1e-5, "weight_decay": 0.1, "warmup": 0.02}}
    paper = "Suzuki et al. Difference Vector Equalization for Robust Fine-tuning of Vision-Language Models. AAAI 2026 (arXiv 2511.09973)"
    checkpoint_buffers = ("m",)

    def __init__(self, context: TrialContext, params: DiveParams) -> None:
        super().__init__(context, params)
        # The pre-trained towers f_pre, g_pre: a frozen copy of the whole model, never optimised.
        self.pretrained = copy.deepcopy(self.model).requires_grad_(False).eval()
        with torch.no_grad():  # the embedding width, read off the model whatever its architecture
            dim = self.model.encode_text(context.bundle.tokenizer([""]).to(context.device)).shape[-1]
        self.register_buffer("m", torch.zeros(dim, device=context.device))
        self.reference = reference_pairs(params.reference, context.bundle, "params.reference")

    @classmethod
    def check(cls, params: DiveParams, context_length: int) -> None:
        # A missing file, a bad header or a missing image is reported at sweep validation.
        if params.reference is not None:
            read_caption_file(Path(params.reference), "reference")

    def train(self, mode: bool = True) -> Dive:
        super().train(mode)
        self.pretrained.eval()
        return self

    def _embed(self, model: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
