"""Low-rank weight updates (LoRA) for CLIP towers, optionally restricted to chosen rows.

A weight W [rows, cols] becomes ``W + c * (m ⊙_rows A) @ B`` with A [rows, r], B [r, cols],
c = alpha / r (or alpha / sqrt(r), the rank-stabilised form that CLIP-LoRA's released code uses)
and m an optional 0/1 mask over rows. The mask sits inside the product, as in LoRSU's
``MaskedLoRAParametrization``: rows of A outside the mask get exactly zero gradient and the masked
rows of W never move. One factor is Kaiming-uniform(a=sqrt 5), the other zero, so the update
starts at 0; ``zero`` picks which (LoRSU zeroes B [r, cols], CLIP-LoRA/loralib zero A [rows, r]).

Two ways to attach it:

- ``add_lora``: a ``torch.nn.utils.parametrize`` parametrization of any weight tensor (an
  ``in_proj_weight``, the bare ``visual.proj``); ``merge_lora`` folds it into the weight.
- ``LoRAAttention``: wraps an ``nn.MultiheadAttention`` and adds separate q, k, v updates to the
  projected inputs, with dropout on the LoRA input (which a weight parametrization cannot
  express); ``LoRAAttention.merged()`` folds them in and returns the plain module.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize


class LowRankDelta(nn.Module):
    """The update ``c * (m ⊙_rows A) @ B``; as a parametrization its forward returns ``W + update``."""

    row_mask: torch.Tensor | None

    def __init__(
        self,
        rows: int,
        cols: int,
        rank: int,
        alpha: float,
        *,
        zero: Literal["A", "B"] = "B",
        row_mask: torch.Tensor | None = None,
        rank_stabilised: bool = False,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be positive, got {rank}")
        self.A = nn.Parameter(torch.zeros(rows, rank, device=device, dtype=dtype))
        self.B = nn.Parameter(torch.zeros(rank, cols, device=device, dtype=dtype))
        self.zero = zero
        self.restart()
        self.scale = alpha / (math.sqrt(rank) if rank_stabilised else rank)
        if row_mask is not None:
            row_mask = row_mask.to(device=device, dtype=torch.bool)
            if row_mask.shape != (rows,):
                raise ValueError(f"row mask must have shape ({rows},), got {tuple(row_mask.shape)}")
        # Not persistent: owners derive it from their own checkpointed state (e.g. head indices).
        self.register_buffer("row_mask", row_mask, persistent=False)

    @torch.no_grad()
    def restart(self) -> None:
        """A new update of exactly 0: the zero factor zeroed, the other drawn again with
        nn.Linear's weight init (a new session's adapter, after the old one is folded in)."""
        zeroed, drawn = (self.A, self.B) if self.zero == "A" else (self.B, self.A)
        zeroed.zero_()
        nn.init.kaiming_uniform_(drawn, a=math.sqrt(5))

    def left(self) -> torch.Tensor:
        """A with the rows outside the mask zeroed (inside the product, so they get no gradient)."""
        return self.A if self.row_mask is None else self.A * self.row_mask[:, None]

    def delta(self) -> torch.Tensor:
        """The dense update [rows, cols]."""
        return self.scale * (self.left() @ self.B)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ update.T`` without forming the dense update (for ``F.linear``-shaped weights)."""
        return self.scale * F.linear(F.linear(x, self.B), self.left())


def add_lora(
    module: nn.Module,
    name: str,
    rank: int,
    alpha: float,
    *,
    zero: Literal["A", "B"] = "B",
    row_mask: torch.Tensor | None = None,
    rank_stabilised: bool = False,
) -> LowRankDelta:
    """Parametrize ``module.<name>`` (a 2-D parameter) as ``W + update``; returns the update module."""
    weight = getattr(module, name)
    if weight.dim() != 2:
        raise ValueError(f"LoRA needs a 2-D weight, {name} has shape {tuple(weight.shape)}")
    rows, cols = weight.shape
    delta = LowRankDelta(
        rows,
        cols,
        rank,
        alpha,
        zero=zero,
        row_mask=row_mask,
        rank_stabilised=rank_stabilised,
        device=weight.device,
        dtype=weight.dtype,
    )
    parametrize.register_parametrization(module, name, delta)
    return delta


def lora_of(module: nn.Module, name: str) -> LowRankDelta:
    """The update attached to ``module.<name>`` by ``add_lora``."""
    # parametrize keeps the updates in ``module.parametrizations.<name>``, a ModuleList.
    delta = module.get_submodule(f"parametrizations.{name}.0")
    assert isinstance(delta, LowRankDelta)
    return delta


def merge_lora(module: nn.Module, name: str) -> None:
    """Fold the update into the weight and drop the parametrization; the weight keeps its
    ``requires_grad`` flag and its state-dict name (``<name>``, no longer ``...original``)."""
    parametrize.remove_parametrizations(module, name, leave_parametrized=True)


@torch.no_grad()
def fold_lora(module: nn.Module, name: str) -> None:
    """Add the update attached to ``module.<name>`` into its base weight and restart it at 0: the
    same model, with a new update to train (merge, then a fresh LoRA, without changing structure)."""
    delta = lora_of(module, name)
    module.get_parameter(f"parametrizations.{name}.original").add_(delta.delta())
    delta.restart()


class LoRAAttention(nn.Module):
    """``nn.MultiheadAttention`` with LoRA on the q, k and v projections (CLIP-LoRA's
    ``PlainMultiheadAttentionLoRA``): ``q = W_q x + b_q + c * A_q B_q dropout(x)``, and likewise
    for k and v, each with its own factors and dropout draw. Call signature as the wrapped module;
    attention weights are not returned."""

    def __init__(
        self,
        attention: nn.MultiheadAttention,
        rank: int,
        alpha: float,
        dropout: float,
        rank_stabilised: bool = False,
    ) -> None:
        super().__init__()
        if not attention._qkv_same_embed_dim:
            raise ValueError("LoRAAttention needs a packed in_proj_weight (kdim == vdim == embed_dim)")
        self.attention = attention
        weight = attention.in_proj_weight
        width = attention.embed_dim
        self.q, self.k, self.v = (
            LowRankDelta(
                width,
                width,
                rank,
                alpha,
                zero="A",
                rank_stabilised=rank_stabilised,
                device=weight.device,
                dtype=weight.dtype,
            )
            for _ in range(3)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, None]:
        mha = self.attention
        if key_padding_mask is not None or need_weights:
            raise ValueError("LoRAAttention supports neither key_padding_mask nor need_weights")
        if not mha.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        weights = mha.in_proj_weight.chunk(3)
        biases = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None,) * 3
        q, k, v = (
            F.linear(x, w, b) + delta.project(self.dropout(x))
            for x, w, b, delta in zip((query, key, value), weights, biases, (self.q, self.k, self.v), strict=True)
        )
        batch, length, width = q.shape
        heads = mha.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, -1, heads, mha.head_dim).transpose(1, 2)

        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                attn_mask = ~attn_mask  # MHA: True = blocked; SDPA: True = attends
            if attn_mask.dim() == 3:
                attn_mask = attn_mask.view(batch, heads, length, -1)
        out = F.scaled_dot_product_attention(
            split(q),
            split(k),
            split(v),
            attn_mask=attn_mask,
            is_causal=is_causal and attn_mask is None,
            dropout_p=mha.dropout if self.training else 0.0,
        )
        out = mha.out_proj(out.transpose(1, 2).reshape(batch, length, width))
        return (out if mha.batch_first else out.transpose(0, 1)), None

    def merged_weight(self) -> torch.Tensor:
        """``in_proj_weight`` plus the q, k, v updates: the weight ``merged`` leaves, computed."""
        return self.attention.in_proj_weight + torch.cat([self.q.delta(), self.k.delta(), self.v.delta()])

    @torch.no_grad()
    def fold(self) -> None:
        """Add the q, k, v updates into ``in_proj_weight`` and restart them at 0."""
        self.attention.in_proj_weight.copy_(self.merged_weight())
        for delta in (self.q, self.k, self.v):
            delta.restart()

    @torch.no_grad()
    def merged(self) -> nn.MultiheadAttention:
        """The wrapped module with the updates added to ``in_proj_weight``; use it in place of self."""
        self.attention.in_proj_weight.copy_(self.merged_weight())
        return self.attention
