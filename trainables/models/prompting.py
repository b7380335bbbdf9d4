"""Encode text from token embeddings, so prompt-tuning methods (CoOp, KgCoOp, ContCoOp) can train
continuous context vectors through the frozen open_clip text tower; a model's frozen text side
for a task's classes (``PromptTarget``), against which the prompts are assembled. (Counting a
phrase's CLIP tokens without torch is ``trainables.models.bpe``.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from trainables.errors import InputError

# open_clip is imported where it is used: its import takes seconds, which `sweeper validate` and
# `sweeper methods` (they import this module) should not pay.
if TYPE_CHECKING:
    import open_clip

    from trainables.models.loading import ClipBundle


def token_embeddings(model: open_clip.CLIP, tokens: torch.Tensor) -> torch.Tensor:
    """The text tower's input embeddings [B, L, W] for token ids [B, L] (before positions)."""
    return model.token_embedding(tokens)


def encode_text_from_embeddings(
    model: open_clip.CLIP, embeddings: torch.Tensor, tokens: torch.Tensor, normalize: bool = True
) -> torch.Tensor:
    """Run the text tower from ``embeddings`` [B, L, W]; ``tokens`` [B, L] still locate each EOT.

    Equals ``model.encode_text(tokens)`` when ``embeddings == token_embeddings(model, tokens)``.
    """
    import open_clip

    cast = model.transformer.get_cast_dtype()
    x = embeddings.to(cast) + model.positional_embedding.to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask)
    x = model.ln_final(x)
    x = open_clip.transformer.text_global_pool(
        x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None)
    )
    if isinstance(model.text_projection, torch.nn.Linear):
        x = model.text_projection(x)
    elif model.text_projection is not None:
        x = x @ model.text_projection
    return F.normalize(x, dim=-1) if normalize else x


@dataclass
class PromptTarget:
    """One model's frozen text side for the task's classes, against which prompts are assembled."""

    model: open_clip.CLIP
    tokenizer: Any
    classnames: Sequence[str]
    tokens: torch.Tensor  # [C, L] ids of "X..X name.", to locate each EOT
    prefix: torch.Tensor  # [C, 1, D] SOS embedding
    suffix: torch.Tensor  # [C, L - 1 - N, D] class-name tokens, ".", EOS, padding
    name_lengths: torch.Tensor  # [C] class-name token counts L_c
    _texts: dict[str, torch.Tensor] = field(default_factory=dict)

    @torch.no_grad()
    def text(self, template: str | Sequence[str]) -> torch.Tensor:
        """Normalised text features [C, E] of ``template`` per class, memoised (frozen tower); of
        a template set, the normalised mean of its templates' features (as ``zero_shot_head``)."""
        if not isinstance(template, str):
            if len(template) == 1:  # bitwise the single template's features
                return self.text(template[0])
            return F.normalize(torch.stack([self.text(t) for t in template]).mean(dim=0), dim=-1)
        if template not in self._texts:
            tokens = self.tokenizer([template.format(c) for c in self.classnames]).to(self.tokens.device)
            self._texts[template] = F.normalize(self.model.encode_text(tokens), dim=-1)
        return self._texts[template]


@torch.no_grad()
def build_target(bundle: ClipBundle, classnames: Sequence[str], n_ctx: int) -> PromptTarget:
    """Tokenise ``"X"*N + " name."`` per class (CoOp's placeholder trick) and embed it."""
    model, tokenize = bundle.model, bundle.tokenizer
    device = model.token_embedding.weight.device
    tokens = tokenize([" ".join(["X"] * n_ctx) + f" {name}." for name in classnames]).to(device)
    eot = tokens.argmax(dim=1)
    dot = int(tokenize(["."])[0, 1])
    # A prompt cut by the context length loses its "." before the EOT the tokenizer forces in.
    cut = [c for row, (c, i) in enumerate(zip(classnames, eot.tolist(), strict=True)) if tokens[row, i - 1] != dot]
    if cut or (eot < n_ctx + 3).any():
        raise InputError(
            "n_ctx",
            f"{n_ctx} context tokens plus the class name {cut[:1] or classnames[:1]} "
            f"do not fit {bundle.name}'s text context of {tokens.shape[1]} tokens",
        )
    embeddings = model.token_embedding(tokens)
    return PromptTarget(
        model, tokenize, list(classnames), tokens, embeddings[:, :1], embeddings[:, 1 + n_ctx :], eot - n_ctx - 2
    )
