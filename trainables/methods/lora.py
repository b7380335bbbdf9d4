"""LoRA on the image tower's attention (CLIP-LoRA, Zanella and Ben Ayed, CVPRW 2024), image side.

In every visual block the q, k and v projections become ``m = W_m x + b_m + c * A_m B_m dropout(x)``
(m in q, k, v) with A_m [D, r] zero-initialised, B_m [r, D] Kaiming-uniform(a=sqrt 5), dropout 0.25
on the LoRA input, r = 2 and alpha = 1 (the reference defaults). Classification is
``s * F(x) @ W`` with the zero-shot head W and cross-entropy, as in FT; AdamW at lr 2e-4 and
weight decay 0.01 unless the trial says otherwise (the reference's batch 32 and iteration count
are left to the trial). After training the updates are merged into ``in_proj_weight``, so
inference costs what the base model costs.

[R] choices, relative to the reference (which adapts both towers):
- Only the image tower is adapted. CLIP-LoRA classifies with text features of its LoRA-adapted
  text tower; with the text tower frozen, those are a fixed zero-shot head, so by default the
  head is frozen too (``train_head: false``); ``train_head: true`` trains it as FT does.
- The scale: the released code uses c = alpha / sqrt(r) (``loralib/layers.py``, the alpha / r
  line is commented out); the spec note says alpha / r. ``scaling`` chooses; default the code's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from trainables.errors import InputError
from trainables.methods.base import ImageClassifier, MethodParams, TrialContext
from trainables.models.lora import LoRAAttention
from trainables.registry import register


def visual_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The image tower's residual blocks; an InputError if they are not open_clip's plain ViT
    blocks (``attn`` an ``nn.MultiheadAttention`` with a packed in_proj, ``mlp.c_fc`` a Linear)."""
    try:
        blocks = list(model.visual.transformer.resblocks)
    except AttributeError:
        raise InputError("model", "LoRA methods need an open_clip ViT image tower") from None
    for block in blocks:
        attn = getattr(block, "attn", None)
        ok = isinstance(attn, torch.nn.MultiheadAttention) and attn._qkv_same_embed_dim
        if not ok or not isinstance(getattr(getattr(block, "mlp", None), "c_fc", None), torch.nn.Linear):
            raise InputError("model", "LoRA methods need blocks with nn.MultiheadAttention (packed "
                             "in_proj_weight) and mlp.c_fc; this image tower has another layout")
    return blocks


class LowRankMethod(ImageClassifier, ABC):
    """Shared by LoRA and LoRSU: a frozen base model, updates merged after training, parameter
    counts against the unmodified model, and checkpoints that stay loadable once merged.

    A merged model has different parameter names (the LoRA modules are gone), so after merging
    ``trainable_state`` also saves the merged weights with the ``merged`` flag, and loading a
    state whose flag is set merges this method first, so that the names match again.
    """

    checkpoint_buffers = ("merged",)

    def __init__(self, context: TrialContext, params: MethodParams) -> None:
        super().__init__(context, params)
        self.blocks = visual_blocks(self.model)  # a plain list: not registered twice
        # Sizes of the model before any LoRA factor is attached, for the parameter fractions.
        self.model_size = sum(p.numel() for p in self.model.parameters())
        self.visual_size = sum(p.numel() for p in self.model.visual.parameters())
        self.model.requires_grad_(False)
        self.head.requires_grad_(False)
        self.register_buffer("merged", torch.zeros((), dtype=torch.bool, device=context.device))
        self.register_load_state_dict_pre_hook(LowRankMethod._merge_if_loading_merged)

    @abstractmethod
    def merge(self) -> None:
        """Fold every update into its weight (structure changes; called once)."""

    @abstractmethod
    def merged_keys(self) -> list[str]:
        """State-dict names of the weights that ``merge`` writes into."""

    @abstractmethod
    def effective_trainable(self) -> int:
        """Entries training can change (see the module docstrings for the accounting)."""

    def after_training(self) -> None:
        if not bool(self.merged):
            self.merge()
            self.merged.fill_(True)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        state = super().trainable_state()
        if bool(self.merged):
            current = self.state_dict()
            state.update({k: current[k].detach().clone() for k in self.merged_keys()})
        return state

    @staticmethod
    def _merge_if_loading_merged(module: torch.nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
        flag = state_dict.get(prefix + "merged")
        if isinstance(module, LowRankMethod) and flag is not None and bool(flag) and not bool(module.merged):
            module.after_training()  # its values are overwritten by the loaded weights next

    def parameter_metrics(self) -> dict[str, float]:
        count = self.effective_trainable()
        return {
            "params/trainable": float(count),
            "params/trainable_fraction": count / self.model_size,
            "params/visual_fraction": count / self.visual_size,
        }


class LoRAParams(MethodParams):
    rank: int = Field(2, ge=1, le=1024, description="LoRA rank r of each q, k, v update")
    alpha: float = Field(1.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r or alpha / sqrt(r)")
    dropout: float = Field(0.25, ge=0, lt=1, description="dropout on the LoRA input (CLIP-LoRA: 0.25)")
    scaling: Literal["sqrt_rank", "rank"] = Field(
        "sqrt_rank", description="scale alpha / sqrt(r) (CLIP-LoRA's released code) or alpha / r (LoRA paper)"
    )
    train_head: bool = Field(
        False, description="also train the zero-shot-initialised head (CLIP-LoRA's text side is not a trained head)"
    )


@register("lora")
class LoRA(LowRankMethod):
    """CE on ``s * F(x) @ W`` with LoRA on the image tower's q, k, v; merged after training."""

    Params = LoRAParams
    params: LoRAParams
    paper = "Zanella and Ben Ayed, CVPRW 2024 (CLIP-LoRA, MaxZanella/CLIP-LoRA); Hu et al., ICLR 2022 (LoRA)"
    default_train = {"lr": 2e-4, "weight_decay": 0.01}  # CLIP-LoRA's AdamW recipe

    def __init__(self, context: TrialContext, params: LoRAParams) -> None:
        super().__init__(context, params)
        for block in self.blocks:
            # New modules: their factors require grad, everything of the base model stays frozen.
            block.attn = LoRAAttention(block.attn, params.rank, params.alpha, params.dropout,
                                       rank_stabilised=params.scaling == "sqrt_rank")
        self.head.requires_grad_(params.train_head)
        self.trainable_count = sum(p.numel() for p in self.parameters() if p.requires_grad)

    def merge(self) -> None:
        for block in self.blocks:
            block.attn = block.attn.merged()

    def merged_keys(self) -> list[str]:
        prefix = "model.visual.transformer.resblocks"
        return [f"{prefix}.{i}.attn.in_proj_weight" for i in range(len(self.blocks))]

    def effective_trainable(self) -> int:
        # Every factor entry can change (no masks): L * 3 * r * 2D, plus the head if it trains.
        return self.trainable_count

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(self.logits(images), labels)
        return {"loss": ce, "ce": ce}
