"""The prompt methods' shared hyperparameters (CoOp, KgCoOp, ContCoOp) and their checks."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from trainables.errors import InputError
from trainables.methods.params.base import MethodParams
from trainables.models import zoo

ModelSpec = str | dict[str, str]


class PromptParams(MethodParams):
    """Learnable context vectors in front of the class names, optionally carried to another model."""

    logs: ClassVar[tuple[str, ...]] = ("compat/",)  # with upgrade_model set

    n_ctx: int = Field(16, ge=1, le=64, description="number of learnable context vectors N")
    ctx_init: str = Field(
        "random",
        min_length=1,
        description=(
            '"random": N(0, 0.02^2) vectors; otherwise a phrase of exactly n_ctx tokens whose token '
            'embeddings initialise the context, e.g. "a photo of a"'
        ),
    )
    upgrade_model: ModelSpec | None = Field(
        None,
        description=(
            "model spec (zoo/<name> or {arch, pretrained}) to carry the learned prompts to after "
            "training, for the compat/* metrics; it must have the same text width"
        ),
    )

    def check_model(self, context_length: int) -> None:
        if self.n_ctx + 4 > context_length:  # SOS, context, >= 1 name token, ".", EOS
            raise InputError("n_ctx", f"n_ctx + 4 = {self.n_ctx + 4} exceeds the text context length {context_length}")
        if self.ctx_init != "random":
            # CLIP's BPE, which every zoo and OpenAI model uses; the trial recounts with the
            # model's own tokenizer, for models that bring another one.
            from trainables.models.bpe import count_tokens

            count = count_tokens(self.ctx_init)
            if count != self.n_ctx:
                raise InputError("ctx_init", f"{self.ctx_init!r} is {count} tokens, but n_ctx is {self.n_ctx}")
        if self.upgrade_model is not None:
            check_upgrade_model(self.upgrade_model)


def check_upgrade_model(spec: ModelSpec) -> None:
    """Cheap local checks of ``upgrade_model`` at validation rather than after training; loading
    the model at the end of the trial repeats them."""
    if isinstance(spec, str):
        if not spec.startswith("zoo/") or spec[len("zoo/") :] not in zoo.names():
            raise InputError("upgrade_model", f"{spec!r} is not a zoo model; shipped: {', '.join(zoo.names())}")
        return
    # A real open_clip architecture: its configs come with open_clip (and so torch).
    import open_clip

    from trainables.models.loading import resolve_hub_weights

    zoo.register_configs()  # so that get_model_config knows the zoo architectures too
    if "arch" not in spec or "pretrained" not in spec or set(spec) - {"arch", "pretrained", "cache_dir"}:
        raise InputError("upgrade_model", "needs 'arch' and 'pretrained' (and optionally 'cache_dir') only")
    if open_clip.get_model_config(spec["arch"]) is None:
        raise InputError("upgrade_model.arch", f"unknown architecture {spec['arch']!r}; see open_clip.list_models()")
    if "/" in spec["pretrained"] or spec["pretrained"].endswith((".pt", ".pth", ".bin", ".safetensors")):
        if not Path(spec["pretrained"]).expanduser().is_file():
            raise InputError("upgrade_model.pretrained", f"checkpoint file {spec['pretrained']!r} does not exist")
    else:  # a hub tag: are its weights in the local cache?
        resolve_hub_weights(spec["arch"], spec["pretrained"], spec.get("cache_dir"), "upgrade_model.pretrained")


class KDParams(PromptParams):
    """KgCoOp-style prompts: N = 4 context vectors initialised from "a photo of a", plus a KD target."""

    n_ctx: int = Field(4, ge=1, le=64, description="number of learnable context vectors N")
    ctx_init: str = Field(
        "a photo of a",
        min_length=1,
        description=(
            '"random": N(0, 0.02^2) vectors; otherwise a phrase of exactly n_ctx tokens whose token '
            "embeddings initialise the context"
        ),
    )
    kd_template: str = Field(
        "a photo of a {}.",
        pattern=r"^[^{}]*\{\}[^{}]*$",
        description=("hand-written template of the zero-shot KD target w^zs (KgCoOp's CUSTOM_TEMPLATES)"),
    )
    kd_templates: Literal["single", "ensemble"] = Field(
        "single",
        description=(
            "template set of w^zs and of the compat zero-shot references: kd_template alone (KgCoOp's "
            "code) or the data source's template ensemble [R]"
        ),
    )
