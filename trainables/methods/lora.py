"""LoRA on CLIP's attention (CLIP-LoRA, Zanella and Ben Ayed, CVPRW 2024), both towers.

In every attention layer of the adapted towers the q, k and v projections become
``m = W_m x + b_m + c * A_m B_m dropout(x)`` (m in q, k, v) with A_m [D, r] zero-initialised,
B_m [r, D] Kaiming-uniform(a=sqrt 5), dropout 0.25 on the LoRA input, r = 2 and alpha = 1 (the
reference defaults). ``towers: both`` (the reference's encoder='both', position='all') adapts
every block of the image and of the text tower; the class weights are then the text features of
the adapted text tower, ``w_c = normalize(mean_j normalize(G(template_j(c))))``, recomputed with
gradient at every training step and once per evaluation, and the loss is CE on
``s * F(x) @ W`` with the pretrained, fixed s. ``towers: image`` adapts the image tower only and
classifies with the fixed zero-shot head (frozen by default, ``train_head``). AdamW at lr 2e-4
and weight decay 0.01 unless the trial says otherwise (the reference's batch 32 and iteration
count are left to the trial). After training the updates of both towers are merged into their
``in_proj_weight``, so inference costs what the base model costs.

[R] choices, relative to the reference:
- The class-weight templates: CLIP-LoRA uses the dataset's single template; by default the
  class weights follow the existing head construction, the data source's template ensemble
  (``templates: ensemble``, K x J texts per step); ``templates: single`` uses ``template``
  alone, K texts per step, as the reference.
- ``towers: image``: with the text tower frozen the class weights are a fixed zero-shot head,
  so it is frozen too (``train_head: false``); ``train_head: true`` trains it as FT does.
- The scale: the released code uses c = alpha / sqrt(r) (``loralib/layers.py``, the alpha / r
  line is commented out); the spec note says alpha / r. ``scaling`` chooses; default the code's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from trainables.errors import InputError
from trainables.methods.base import ImageClassifier, TrialContext
from trainables.methods.params.base import MethodParams
from trainables.methods.params.lora import LoRAParams
from trainables.models.heads import class_prompt_tokens, head_from_tokens, zero_shot_head
from trainables.models.lora import LoRAAttention, LowRankDelta
from trainables.registry import register


# Typed Any: the model is open_clip's CLIP and the blocks its ResidualAttentionBlocks, which ship no
# type information; these functions check the layout the LoRA methods rely on instead.
def visual_blocks(model: Any) -> list[Any]:
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
            raise InputError(
                "model",
                "LoRA methods need blocks with nn.MultiheadAttention (packed "
                "in_proj_weight) and mlp.c_fc; this image tower has another layout",
            )
    return blocks


def text_blocks(model: Any) -> list[Any]:
    """The text tower's residual blocks; an InputError unless each has open_clip's packed
    ``nn.MultiheadAttention`` (as the image tower's; the causal mask is a plain float mask)."""
    blocks = list(getattr(getattr(model, "transformer", None), "resblocks", None) or [])
    packed = [
        isinstance(getattr(b, "attn", None), torch.nn.MultiheadAttention) and b.attn._qkv_same_embed_dim for b in blocks
    ]
    if not blocks or not all(packed):
        raise InputError(
            "towers",
            "LoRA on the text tower needs open_clip's text transformer with "
            "nn.MultiheadAttention blocks (packed in_proj_weight); use towers: image",
        )
    return blocks


class LowRankMethod(ImageClassifier, ABC):
    """Shared by LoRA and LoRSU: a frozen base model, updates merged after training, parameter
    counts against the unmodified model, and checkpoints that stay loadable once merged.

    A merged model has different parameter names (the LoRA modules are gone), so after merging
    ``trainable_state`` also saves the merged weights with the ``merged`` flag, and loading a
    state whose flag is set merges this method first, so that the names match again.
    """

    checkpoint_buffers: ClassVar[tuple[str, ...]] = ("merged",)
    merged: torch.Tensor  # buffer, registered in __init__: true once the updates are merged

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
    def fold(self) -> None:
        """Add every update into its weight and restart it at 0 (structure unchanged)."""

    def begin_session(self) -> None:
        # The reference merges at the end of a session and attaches new LoRA factors for the next;
        # folding is the same model and keeps the parameter names, so checkpoints load in any session.
        self.fold()

    @abstractmethod
    def merged_keys(self) -> list[str]:
        """State-dict names of the weights that ``merge`` writes into."""

    @abstractmethod
    def effective_trainable(self) -> int:
        """Entries training can change (see the module docstrings for the accounting)."""

    def visual_trainable(self) -> int:
        """The image tower's share of ``effective_trainable`` (all of it unless the text adapts)."""
        return self.effective_trainable()

    def after_training(self) -> None:
        if not bool(self.merged):
            self.merge()
            self.merged.fill_(True)

    def zero_shot_weights(self) -> dict[str, torch.Tensor]:
        """The merged weights under their merged names (the base weight plus its current update
        before merging, the live parameter after), and the other trained tensors (biases, fc1
        entries, a trained head); the low-rank factors are not in the zero-shot space. At
        construction every update is exactly zero, so these are the zero-shot weights then."""
        factors = {id(p) for m in self.modules() if isinstance(m, LowRankDelta) for p in m.parameters()}
        weights: dict[str, torch.Tensor] = {
            n: p for n, p in self.named_parameters() if p.requires_grad and id(p) not in factors
        }
        for key in self.merged_keys():
            path, name = key.rsplit(".", 1)
            module = self.get_submodule(path)
            # LoRA's wrapped attention computes its merged weight; a parametrized weight (LoRSU)
            # reads as base + update; once merged, the attribute is the parameter itself.
            weights[key] = module.merged_weight() if isinstance(module, LoRAAttention) else getattr(module, name)
        return weights

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
            "params/visual_fraction": self.visual_trainable() / self.visual_size,
        }


@register("lora")
class LoRA(LowRankMethod):
    """CE on ``s * F(x) @ W`` with LoRA on the q, k, v of both towers (W from the adapted text
    tower) or of the image tower; merged after training."""

    Params = LoRAParams
    params: LoRAParams
    class_tokens: torch.Tensor  # buffer, registered in __init__

    def __init__(self, context: TrialContext, params: LoRAParams) -> None:
        super().__init__(context, params)
        bundle = context.bundle
        self.text_resblocks = text_blocks(self.model) if params.towers == "both" else []  # plain list
        templates = list(context.templates) if params.templates == "ensemble" else [params.template]
        if params.templates == "single":  # the base built the ensemble head
            with torch.no_grad():
                self.head.copy_(zero_shot_head(self.model, bundle.tokenizer, context.classnames, templates))
        for block in [*self.blocks, *self.text_resblocks]:
            # New modules: their factors require grad, everything of the base model stays frozen.
            block.attn = LoRAAttention(
                block.attn, params.rank, params.alpha, params.dropout, rank_stabilised=params.scaling == "sqrt_rank"
            )
        self.head.requires_grad_(params.train_head)
        # The class prompts, tokenised once (not checkpointed: they follow from the task).
        tokens = class_prompt_tokens(bundle.tokenizer, context.classnames, templates)
        self.register_buffer("class_tokens", tokens.to(context.device), persistent=False)
        self._eval_head: torch.Tensor | None = None  # the adapted text tower's W, per evaluation
        self.trainable_count = sum(p.numel() for p in self.parameters() if p.requires_grad)
        self.text_count = sum(p.numel() for p in self.model.transformer.parameters() if p.requires_grad)

    def train(self, mode: bool = True) -> LoRA:
        super().train(mode)
        self._eval_head = None  # the text tower may have moved since the head was built
        return self

    def class_weights(self) -> torch.Tensor:
        """W [D, K]: the zero-shot head (towers image), or the adapted text tower's head, with
        gradient in training and computed once per evaluation otherwise."""
        if self.params.towers == "image":
            return self.head
        if self.training:
            return head_from_tokens(self.model, self.class_tokens, self.head.shape[1])
        if self._eval_head is None:
            with torch.no_grad():
                self._eval_head = head_from_tokens(self.model, self.class_tokens, self.head.shape[1])
        return self._eval_head

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * features @ self.class_weights()

    def merge(self) -> None:
        for block in [*self.blocks, *self.text_resblocks]:
            block.attn = block.attn.merged()
        self._eval_head = None

    def fold(self) -> None:
        for block in [*self.blocks, *self.text_resblocks]:
            block.attn.fold()
        self._eval_head = None

    def merged_keys(self) -> list[str]:
        towers = [("model.visual.transformer", self.blocks), ("model.transformer", self.text_resblocks)]
        return [f"{prefix}.resblocks.{i}.attn.in_proj_weight" for prefix, blocks in towers for i in range(len(blocks))]

    def effective_trainable(self) -> int:
        # Every factor entry can change (no masks): L * 3 * r * 2D per adapted tower, plus the
        # head if it trains (CLIP-LoRA's count for B/16: 184,320).
        return self.trainable_count

    def visual_trainable(self) -> int:
        return self.trainable_count - self.text_count

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(self.logits(images), labels)
        return {"loss": ce, "ce": ce}
