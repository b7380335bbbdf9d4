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

from trainables.methods._prompt_learning import PromptLearner
from trainables.methods.params.coop import CoOpParams
from trainables.registry import register


@register("coop")
class CoOp(PromptLearner):
    """A shared learnable context in front of every class name; CE only."""

    Params = CoOpParams
