"""CoOp (Zhou, Yang, Loy and Liu, IJCV 2022): context optimisation for CLIP.

The prompt of class c is ``[SOS] v_1..v_N CLASS_c . [EOS]`` in token-embedding space, with one
context v in R^{N x D} shared by all classes and the class token at the end (the reference's
defaults: CSC=False, class_token_position="end"). The loss is CE over
``s * cos(F(x), normalize(G(prompt_c)))``; both towers and s are frozen, only v trains.
Defaults follow the reference's ViT-B/16 recipe: N = 16, v ~ N(0, 0.02^2). Initialising from a
phrase ("a photo of a", with n_ctx = 4) is the reference's ``ctx_init`` option.

Model update: v is static, so it can be copied to a model of the same text width, but it does
not adapt to that model's embedding space (``upgrade_model`` measures how much survives).
"""

from __future__ import annotations

from pydantic import Field

from trainables.methods._prompt_learning import PromptLearner, PromptParams
from trainables.recipes import PROMPT_SGD, TINY_PROMPT_SGD
from trainables.registry import register


class CoOpParams(PromptParams):
    n_ctx: int = Field(16, ge=1, le=64, description="number of learnable context vectors N")
    ctx_init: str = Field("random", min_length=1, description=(
        '"random": N(0, 0.02^2) vectors; otherwise a phrase of exactly n_ctx tokens whose token '
        'embeddings initialise the context, e.g. "a photo of a" with n_ctx 4'))


@register("coop")
class CoOp(PromptLearner):
    """A shared learnable context in front of every class name; CE only."""

    Params = CoOpParams
    paper = "Zhou et al., IJCV 2022 (CoOp)"
    # The reference trains with SGD lr 2e-3, batch 32; the loop's AdamW keeps the lr [R].
    # CoOp's vit_b16 config [C]: SGD at lr 2e-3, batch 32, 200 epochs (16 shots), constant warm-up.
    recipes = {"tiny": {**TINY_PROMPT_SGD, "batch_size": 32}, "clip": {**PROMPT_SGD, "batch_size": 32, "epochs": 200}}
