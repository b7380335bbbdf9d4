"""Encode text from token embeddings, so prompt-tuning methods (CoOp, KgCoOp, ContCoOp) can train
continuous context vectors through the frozen open_clip text tower; and CLIP's BPE tokenizer,
which counts the tokens of a prompt's initial phrase."""

from __future__ import annotations

import functools

import open_clip
import torch
import torch.nn.functional as F


def token_embeddings(model: open_clip.CLIP, tokens: torch.Tensor) -> torch.Tensor:
    """The text tower's input embeddings [B, L, W] for token ids [B, L] (before positions)."""
    return model.token_embedding(tokens)


def encode_text_from_embeddings(
    model: open_clip.CLIP, embeddings: torch.Tensor, tokens: torch.Tensor, normalize: bool = True
) -> torch.Tensor:
    """Run the text tower from ``embeddings`` [B, L, W]; ``tokens`` [B, L] still locate each EOT.

    Equals ``model.encode_text(tokens)`` when ``embeddings == token_embeddings(model, tokens)``.
    """
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


@functools.cache
def clip_bpe() -> open_clip.tokenizer.SimpleTokenizer:
    """CLIP's BPE tokenizer (bundled with open_clip, no download), built once per process."""
    return open_clip.tokenizer.SimpleTokenizer()
