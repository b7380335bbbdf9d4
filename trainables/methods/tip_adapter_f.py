"""Tip-Adapter-F (Zhang et al., ECCV 2022): Tip-Adapter with its cache keys fine-tuned.

From the official ``main.py`` [C] (methods spec 3.5): the keys become a bias-free linear layer
initialised to the cache (``adapter.weight = cache_keys``), trained with CE on the Tip-Adapter
logits at the initial alpha and beta, with AdamW (lr 1e-3, eps 1e-4), cosine over all steps,
batch 256, 20 epochs, on the cache's augmentation; the values, both towers and the zero-shot head
stay frozen. The trained keys are not re-normalised [C]. Everything else is ``tip_adapter``'s.

A separate method rather than a flag of ``tip_adapter``: whether a method trains is part of its
declaration (``Params.trains``), which the loop, the recipes, ``sweeper methods`` and the
contract tests read per method; a flag would make one declaration both training-free and trained.

Deviations: the code keeps the epoch with the best TEST accuracy and then grid-searches alpha and
beta on val; here the loop selects the epoch on validation like every method [R], and alpha and
beta stay the values the keys were trained at: a search after training would need the validation
split, which a method sees only before training, and would be lost when a trial resumes. Search
them as hyperparameters on ``val/acc`` instead (``search_spaces/tip_adapter_f.yaml``) [R].

Model update: the fine-tuned keys are carried unchanged to v2 (``trainables.methods._adapter``).
"""

from __future__ import annotations

from typing import Any

from trainables.methods.params.tip_adapter_f import TipAdapterFParams
from trainables.methods.tip_adapter import TipAdapter
from trainables.registry import register

ADAMW_EPS = 1e-4  # main.py's AdamW [C]; an SGD group ignores it


@register("tip_adapter_f")
class TipAdapterF(TipAdapter):
    """Tip-Adapter with its cache keys fine-tuned as a linear layer initialised from the cache."""

    Params = TipAdapterFParams
    params: TipAdapterFParams

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": [self.keys], "eps": ADAMW_EPS}]
