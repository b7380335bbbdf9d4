"""Train recipes as data: the train settings a trial gets, by method and by model family.

A trial's train settings come, in order of precedence, from the sweep file (``train``, then train
keys in ``fixed`` and ``search``), then the method's recipe for the model's family, then the
family's base recipe below. Two families:

- ``tiny``: the shipped zoo (``zoo/tiny-clip-*``) on the embedded ``shapes`` world. Its recipe is
  tuned for that world (32-pixel images, a few epochs on a few thousand images) and keeps the
  values every figure in README.md and RESULTS.md was measured with.
- ``clip``: a real open_clip model (``{arch: ..., pretrained: ...}``). Its recipe is the papers'
  (``../shared/reference/methods-*.md``): AdamW at lr 3e-5 with weight decay 0.1, gradient-norm
  clipping at 1.0, an Inception-style crop (area 0.08-1, aspect 3/4-4/3), 10 epochs at batch 512,
  which is WiSE-FT's FT recipe [C: mlfoundations/wise-ft; RM: easyrobust]. Methods whose papers
  differ say so in their own ``recipes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainables.methods.params.base import MethodParams

FAMILIES: tuple[str, ...] = ("tiny", "clip")
ZOO_PREFIX = "zoo/"

BASE_RECIPES: dict[str, dict[str, Any]] = {
    "tiny": {
        "epochs": 4,
        "batch_size": 128,
        "optimizer": "adamw",
        "lr": 3e-4,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "warmup": 0.1,
        "warmup_epochs": None,
        "warmup_lr": None,
        "grad_clip": None,
        "crop_scale": [0.8, 1.0],
        "crop_ratio": [0.9, 1.1],
    },
    "clip": {
        "epochs": 10,
        "batch_size": 512,
        "optimizer": "adamw",
        "lr": 3e-5,
        "momentum": 0.9,
        "weight_decay": 0.1,
        "warmup": 0.1,
        "warmup_epochs": None,
        "warmup_lr": None,
        "grad_clip": 1.0,
        "crop_scale": [0.08, 1.0],
        "crop_ratio": [0.75, 4 / 3],
    },
}

# The official CoOp / KgCoOp Dassl configs (configs/trainers/CoOp/vit_b16.yaml,
# KgCoOp/configs/trainers/KgCoOp/vit_b16_ep100_ctxv1.yaml) [C]: SGD with momentum 0.9 and weight
# decay 5e-4 at lr 2e-3, one warm-up epoch at a constant 1e-5, then cosine; random resized crop
# (torchvision's default area 0.08-1) and flip. Shared by the prompt methods' recipes.
PROMPT_SGD: dict[str, Any] = {
    "optimizer": "sgd",
    "lr": 2e-3,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "warmup_epochs": 1.0,
    "warmup_lr": 1e-5,
    "grad_clip": None,
}

# The same optimiser on the tiny world, with the warm-up as a fraction of the few steps it trains
# (one epoch of 200 is 0.5 %; one of 2-6 would be a third of the budget) [R].
TINY_PROMPT_SGD: dict[str, Any] = {**PROMPT_SGD, "warmup_epochs": None, "warmup": 0.1}


def model_family(model: str | Any) -> str:
    """``tiny`` for a zoo model name, ``clip`` for a real open_clip model (hub tag or file)."""
    return "tiny" if isinstance(model, str) and model.startswith(ZOO_PREFIX) else "clip"


def recipe(method: type[MethodParams], family: str) -> dict[str, Any]:
    """The train settings of ``method`` on a model of ``family``: the base, then the method's own."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return {**BASE_RECIPES[family], **method.recipes.get(family, {})}
