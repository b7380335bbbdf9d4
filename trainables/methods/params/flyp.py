"""FLYP's declaration: no hyperparameters of its own, FLYP's recipe."""

from __future__ import annotations

from typing import Any, ClassVar

from trainables.methods.params.base import MethodParams
from trainables.registry import register_params


@register_params("flyp")
class FlypParams(MethodParams):
    """Contrastive fine-tuning of both towers on class-prompt captions; zero-shot head at eval."""

    interpolable: ClassVar[bool] = True

    paper = (
        "Goyal, Kumar, Garg, Kolter, Raghunathan. Finetune like you pretrain: improved finetuning "
        "of zero-shot vision models. CVPR 2023 (arXiv 2212.00638)"
    )
    # FLYP's ImageNet recipe [RM: README; C: src/args.py]: AdamW lr 1e-5, wd 0.1, batch 512, 10
    # epochs, 500 warm-up steps (about 2 % of them); gradient clipping as WiSE-FT's code [R].
    recipes: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"weight_decay": 0.1},
        "clip": {"lr": 1e-5, "weight_decay": 0.1, "warmup": 0.02},
    }
