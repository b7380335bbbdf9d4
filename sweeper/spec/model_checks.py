"""The sweep's model: a shipped zoo model or open_clip weights, checked without loading them, and
its text context length (which bounds prompt lengths, checked against the methods' parameters).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from trainables.data.base import user_path
from trainables.errors import InputError
from trainables.models import zoo
from trainables.models.loading import ZOO_PREFIX, _check_arch, check_weights_file, resolve_hub_weights

if TYPE_CHECKING:  # the schema imports this module
    from sweeper.spec.sections import ModelSpec

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def context_length(model: str | ModelSpec) -> int:
    """The text context length of the model spec, read from its config without loading weights."""
    if isinstance(model, str):
        if not model.startswith(ZOO_PREFIX):
            raise InputError(
                "model", f"{model!r} is not a zoo model; write zoo/<name> or {{arch: ..., pretrained: ...}}"
            )
        name = model[len(ZOO_PREFIX) :]
        if name not in zoo.names():
            raise InputError("model", f"unknown zoo model {name!r}; shipped: {', '.join(zoo.names())}")
        return int(json.loads(zoo.config_path(name).read_text())["text_cfg"]["context_length"])
    import open_clip

    _check_arch(model.arch, "model.arch")
    pretrained = model.pretrained
    if os.sep in pretrained or pretrained.endswith(WEIGHT_SUFFIXES):
        check_weights_file(user_path(pretrained, "model.pretrained"), "model.pretrained")
    else:
        resolve_hub_weights(model.arch, pretrained, model.cache_dir, "model.pretrained")
    return int(open_clip.get_model_config(model.arch)["text_cfg"].get("context_length", 77))
