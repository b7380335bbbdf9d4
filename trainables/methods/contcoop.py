"""ContCoOp (Wang, Liang, Sheng, He, Wang and Tan, arXiv 2412.20895): class-conditioned context
optimisation, built to stay compatible when the underlying CLIP model is upgraded.

A learnable context p in R^{N x D} is fused with a class embedding E_c by one attention layer
before the frozen text encoder (verified from the abstract). The paper's Attn(p, c) = O[:N], one
head with Kaiming initialisation and no residual, and its hint that E_c comes from the text
encoder, set the defaults; the rest is reconstructed [R] from the spec
(``methods-lorsu-contcoop.md`` section 2), as no code is public:

    X_c     = [p ; E_c]                                               # (N + L_c) x D
    O_c     = softmax((p W_Q)(X_c W_K)^T / sqrt(D)) (X_c W_V) W_O     # single head, rows of p
    p~_c    = O_c  (residual=False, default)   or   p + O_c  (residual=True) [R]
    prompt_c = [SOS] p~_c CLASS_c . [EOS],   w_c = normalize(G(prompt_c))
    L       = CE(s * cos(F(x), w_y)) + lam * (1 - mean_c cos(w_c, w_c^zs))   # KgCoOp's KD form

Querying with the rows of p only equals taking O_c[:N] of full self-attention over X_c.
E_c (``class_embedding``) is either ``text_feature`` (default): one vector, the current model's
zero-shot text feature w_c^zs, the KD target (``kd_templates``; needs text-feature dimension ==
token width, true of the tiny zoo, CLIP B/16 and L/14), or ``tokens`` [R]: the class name's L_c
token embeddings from the CURRENT model's table. Initialisation: p from "a photo of a" (N = 4)
[R]; ``attention_init: kaiming`` leaves nn.Linear's Kaiming-uniform init of W_Q, W_K, W_V, W_O
(the paper's), ``identity`` [R] sets them to the identity, with W_O zero under the residual (the
method then starts exactly at the hand-written prompt, i.e. at KgCoOp). The earlier variant is
``{residual: true, attention_init: identity, class_embedding: tokens}``. lam = 8.0 [R] (KgCoOp's
W; the paper's value is unknown).

Model update: E_c (and w^zs) are recomputed from the upgraded model, while p and the attention
trained on the old model are reused, so the context is re-conditioned on the new embedding space.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from trainables.errors import InputError
from trainables.methods._prompt_learning import PromptLearner
from trainables.methods.base import TrialContext
from trainables.methods.params.contcoop import ContCoOpParams
from trainables.models.prompting import PromptTarget
from trainables.registry import register


class ContextFusion(torch.nn.Module):
    """Single-head attention from the context rows p to [p ; E_c], per class."""

    def __init__(self, width: int, residual: bool, init: Literal["kaiming", "identity"] = "kaiming") -> None:
        super().__init__()
        self.residual = residual
        self.q, self.k, self.v, self.o = (torch.nn.Linear(width, width) for _ in range(4))
        if init == "kaiming":
            return  # nn.Linear's own init: Kaiming-uniform weights, uniform biases
        with torch.no_grad():  # identity start [R]; a zero W_O makes the residual exact
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
    kd_field = "lam"

    def __init__(self, context: TrialContext, params: ContCoOpParams) -> None:
        super().__init__(context, params)
        self.fusion = ContextFusion(self.ctx.shape[1], params.residual, params.attention_init).to(context.device)

    def check_dims(self, where: str, name: str, width: int, embed_dim: int) -> None:
        super().check_dims(where, name, width, embed_dim)
        if self.params.class_embedding == "text_feature" and embed_dim != width:
            raise InputError(
                where if where == "upgrade_model" else "class_embedding",
                (
                    f"class_embedding 'text_feature' feeds {name}'s text features (dimension {embed_dim}) "
                    f"to an attention over token embeddings (width {width}); use 'tokens'"
                ),
            )

    def class_inputs(self, target: PromptTarget) -> tuple[torch.Tensor, torch.Tensor]:
        """E_c [C, L, D] and its mask [C, L], from ``target``'s (the current model's) text side."""
        if self.params.class_embedding == "text_feature":
            feature = target.text(self.zero_shot_templates())  # w^zs, the KD target [R]
            return feature.unsqueeze(1), torch.ones(feature.shape[0], 1, dtype=torch.bool, device=feature.device)
        longest = int(target.name_lengths.max())
        # The suffix starts with the class-name tokens; "." and EOS after them are masked out.
        positions = torch.arange(longest, device=target.suffix.device)
        return target.suffix[:, :longest], positions.unsqueeze(0) < target.name_lengths.unsqueeze(1)

    def context_vectors(self, target: PromptTarget) -> torch.Tensor:
        return self.fusion(self.ctx, *self.class_inputs(target))
