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

from trainables.methods._prompt_learning import PromptLearner
from trainables.methods.params.kgcoop import KgCoOpParams
from trainables.registry import register


@register("kgcoop")
class KgCoOp(PromptLearner):
    """CoOp kept close to the hand-written prompt's text features."""

    Params = KgCoOpParams
    kd_field = "W"
