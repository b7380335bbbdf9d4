"""ContCoOp (Wang, Liang, Sheng, He, Wang and Tan, arXiv 2412.20895): class-conditioned context
optimisation, built to stay compatible when the underlying CLIP model is upgraded.

A learnable context p in R^{N x D} is fused with a class embedding E_c by one attention layer
before the frozen text encoder (verified from the abstract); everything else is reconstructed
[R] from the spec (``methods-lorsu-contcoop.md`` section 2), as no code is public:

    X_c     = [p ; E_c]                                               # (N + L_c) x D
    O_c     = softmax((p W_Q)(X_c W_K)^T / sqrt(D)) (X_c W_V) W_O     # single head, rows of p
    p~_c    = p + O_c  (residual=True)   or   O_c  (residual=False)   [R]
    prompt_c = [SOS] p~_c CLASS_c . [EOS],   w_c = normalize(G(prompt_c))
    L       = CE(s * cos(F(x), w_y)) + lam * (1 - mean_c cos(w_c, w_c^zs))   # KgCoOp's KD form

Querying with the rows of p only equals taking O_c[:N] of full self-attention over X_c.
E_c (``class_embedding``) is either ``tokens``: the class name's L_c token embeddings from the
CURRENT model's table, or ``text_feature`` [R]: one vector, the current model's normalised text
feature of "a photo of a {c}." (needs text-feature dimension == token width). Initialisation
[R]: p from "a photo of a" (N = 4); W_Q, W_K, W_V identity, W_O zero with the residual (so the
method starts exactly at the hand-written prompt) and identity without it. lam = 8.0 [R]
(KgCoOp's W; the paper's value is unknown).

Model update: E_c (and w^zs) are recomputed from the upgraded model, while p and the attention
trained on the old model are reused, so the context is re-conditioned on the new embedding space.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from trainables.errors import InputError
from trainables.methods._prompt_learning import KDParams, PromptLearner, PromptTarget
from trainables.methods.base import TrialContext
from trainables.registry import register

CLASS_FEATURE_TEMPLATE = "a photo of a {}."


class ContCoOpParams(KDParams):
    lam: float = Field(8.0, ge=0, description="weight of the KD term 1 - mean_c cos(w_c, w_c^zs) [R]")
    class_embedding: Literal["tokens", "text_feature"] = Field("tokens", description=(
        "E_c: the class name's token embeddings (L_c x D), or the zero-shot text feature of "
        "'a photo of a {c}.' (1 x D) [R]; both from the current model"))
    residual: bool = Field(True, description="p~_c = p + attention output (zero at init) instead of the output alone [R]")


class ContextFusion(torch.nn.Module):
    """Single-head attention from the context rows p to [p ; E_c], per class."""

    def __init__(self, width: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.q, self.k, self.v, self.o = (torch.nn.Linear(width, width) for _ in range(4))
        with torch.no_grad():  # near-identity start [R]; a zero W_O makes the residual exact
            for layer in (self.q, self.k, self.v, self.o):
                layer.weight.copy_(torch.eye(width))
                layer.bias.zero_()
            if residual:
                self.o.weight.zero_()

    def forward(self, p: torch.Tensor, classes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """p [N, D], class embeddings [C, L, D] with ``mask`` [C, L] (True = real) -> [C, N, D]."""
        count, n = classes.shape[0], p.shape[0]
        x = torch.cat([p.unsqueeze(0).expand(count, -1, -1), classes.to(p.dtype)], dim=1)
        keep = torch.cat([mask.new_ones(count, n), mask], dim=1)
        scores = self.q(p) @ self.k(x).transpose(1, 2) / math.sqrt(p.shape[1])  # [C, N, N + L]
        scores = scores.masked_fill(~keep.unsqueeze(1), float("-inf"))
        out = self.o(scores.softmax(dim=-1) @ self.v(x))
        return p + out if self.residual else out


@register("contcoop")
class ContCoOp(PromptLearner):
    """A context re-conditioned on each class's embedding in the current model."""

    Params = ContCoOpParams
    params: ContCoOpParams
    paper = "Wang et al., arXiv 2412.20895 (ContCoOp)"
    kd_field = "lam"
    default_train = {"lr": 2e-3, "batch_size": 128}  # KgCoOp's recipe [R]

    def __init__(self, context: TrialContext, params: ContCoOpParams) -> None:
        super().__init__(context, params)
        self.fusion = ContextFusion(self.ctx.shape[1], params.residual).to(context.device)

    def check_dims(self, where: str, name: str, width: int, embed_dim: int) -> None:
        super().check_dims(where, name, width, embed_dim)
        if self.params.class_embedding == "text_feature" and embed_dim != width:
            raise InputError(where if where == "upgrade_model" else "class_embedding", (
                f"class_embedding 'text_feature' feeds {name}'s text features (dimension {embed_dim}) "
                f"to an attention over token embeddings (width {width}); use 'tokens'"))

    def class_inputs(self, target: PromptTarget) -> tuple[torch.Tensor, torch.Tensor]:
        """E_c [C, L, D] and its mask [C, L], from ``target``'s (the current model's) text side."""
        if self.params.class_embedding == "text_feature":
            feature = target.text(CLASS_FEATURE_TEMPLATE)
            return feature.unsqueeze(1), torch.ones(feature.shape[0], 1, dtype=torch.bool, device=feature.device)
        longest = int(target.name_lengths.max())
        # The suffix starts with the class-name tokens; "." and EOS after them are masked out.
        positions = torch.arange(longest, device=target.suffix.device)
        return target.suffix[:, :longest], positions.unsqueeze(0) < target.name_lengths.unsqueeze(1)

    def context_vectors(self, target: PromptTarget) -> torch.Tensor:
        return self.fusion(self.ctx, *self.class_inputs(target))
