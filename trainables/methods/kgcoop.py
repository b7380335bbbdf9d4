"""KgCoOp (Yao, Zhang and Xu, CVPR 2023): knowledge-guided context optimisation.

CoOp's prompt ``[SOS] v_1..v_N CLASS_c . [EOS]`` with N = 4 context vectors initialised from
"a photo of a", trained with

    L = CE(s * cos(F(x), w_y)) + W * (1 - mean_c cos(w_c, w_c^zs)),

where w_c = normalize(G(prompt_c)) and w_c^zs is the frozen model's text feature of the
hand-written template (the reference's CUSTOM_TEMPLATES, one per dataset, "a photo of a {}." for
ImageNet [C]; ``kd_template``). ``kd_templates: ensemble`` [R] anchors to the data source's
template ensemble instead, the head every ``zeroshot`` reference uses; the compat zero-shot
references follow the same set. For unit vectors the term is half the mean squared distance the
paper writes. W = 8.0 as in the reference scripts. Towers and s are frozen; only v trains.
"""

from __future__ import annotations

from pydantic import Field

from trainables.methods._prompt_learning import KDParams, PromptLearner
from trainables.recipes import PROMPT_SGD, TINY_PROMPT_SGD
from trainables.registry import register


class KgCoOpParams(KDParams):
    W: float = Field(8.0, ge=0, description="weight of the knowledge-guided term 1 - mean_c cos(w_c, w_c^zs)")


@register("kgcoop")
class KgCoOp(PromptLearner):
    """CoOp kept close to the hand-written prompt's text features."""

    Params = KgCoOpParams
    paper = "Yao et al., CVPR 2023 (KgCoOp)"
    kd_field = "W"
    # The reference trains with SGD lr 2e-3, batch 128; the loop's AdamW keeps the lr [R].
    # KgCoOp's vit_b16_ep100_ctxv1 config [C]: SGD at lr 2e-3, batch 128, 100 epochs.
    recipes = {"tiny": {**TINY_PROMPT_SGD, "batch_size": 128}, "clip": {**PROMPT_SGD, "batch_size": 128, "epochs": 100}}
