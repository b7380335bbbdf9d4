"""Shared base of the prompt-learning methods (CoOp, KgCoOp, ContCoOp) and their model-update
compatibility evaluation.

Class c is classified through the prompt ``[SOS] v_1..v_N CLASS_c . [EOS]``, assembled in
token-embedding space: N learnable context vectors v (shared, or class-specific in a subclass)
then the class name's own token embeddings. With the frozen image tower F, text tower G and
logit scale s: ``w_c = normalize(G(prompt_c))``, ``logits_c(x) = s * cos(F(x), w_c)``. Only the
prompt parameters train, so the retention metrics equal zero-shot. Methods with a KD weight add
KgCoOp's ``1 - mean_c cos(w_c, w_c^zs)``, w^zs the zero-shot text feature of ``kd_templates``:
``single``, the one hand-written ``kd_template`` (KgCoOp's code: one CUSTOM_TEMPLATES entry per
dataset, "a photo of a {}." for ImageNet [C]), or ``ensemble``, the data source's templates
(normalised mean of normalised features, as the ``zeroshot`` method) [R].

``upgrade_model`` carries the learned parameters, without retraining, to a model of the same
text width, with its own tokenizer, token embeddings and towers (spec 2.5-2.6), and reports
``compat/v1/acc``, ``compat/v2/acc`` (ID accuracy on the trained and the upgraded model), their
harmonic mean ``compat/hmean`` and the zero-shot references ``compat/v{1,2}/zs_acc``, built from
the same template set as the KD target (``zeroshot`` with ``templates: single`` reproduces them
for a table's zero-shot row); CoOp, without KD, uses the data source's ensemble.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from trainables.errors import InputError
from trainables.methods._compat import compat_metrics
from trainables.methods.base import Evaluator, Method, TrialContext
from trainables.methods.params._prompt import KDParams, ModelSpec, PromptParams
from trainables.methods.params.base import MethodParams
from trainables.models import zoo
from trainables.models.heads import zero_shot_head
from trainables.models.loading import ClipBundle, load_clip
from trainables.models.prompting import PromptTarget, build_target, encode_text_from_embeddings

# open_clip is imported where it is used: its import takes seconds, which `sweeper validate` and
# `sweeper methods` (they import this module) should not pay.
if TYPE_CHECKING:
    import open_clip


def kd_loss(features: torch.Tensor, zero_shot: torch.Tensor) -> torch.Tensor:
    """KgCoOp's knowledge-guided term ``1 - mean_c cos(w_c, w_c^zs)`` for [C, E] features."""
    return 1 - F.cosine_similarity(features, zero_shot, dim=-1).mean()


def text_dims(model: open_clip.CLIP) -> tuple[int, int]:
    """(token-embedding width, text-feature dimension) of a loaded model."""
    width = model.token_embedding.weight.shape[1]
    projection = model.text_projection
    if isinstance(projection, torch.nn.Linear):
        return width, projection.out_features
    return width, width if projection is None else projection.shape[1]


def spec_dims(spec: ModelSpec) -> tuple[int, int] | None:
    """The same from the open_clip config alone (no weights); None if the config does not say."""
    import open_clip

    zoo.register_configs()
    arch = spec.removeprefix("zoo/") if isinstance(spec, str) else spec.get("arch")
    cfg = open_clip.get_model_config(arch) if arch else None
    if cfg is None or "width" not in cfg.get("text_cfg", {}):
        return None
    return int(cfg["text_cfg"]["width"]), int(cfg["embed_dim"])


class FixedHead(Method):
    """A model with fixed class features [C, E]: how prompts are evaluated on another model."""

    trains = False
    # Buffers registered in __init__ (annotated here: nn.Module's __getattr__ is untyped).
    features: torch.Tensor
    scale: torch.Tensor

    def __init__(self, context: TrialContext, params: MethodParams, features: torch.Tensor) -> None:
        super().__init__(context, params)
        self.model = context.bundle.model
        self.register_buffer("features", features.detach())
        self.register_buffer("scale", self.model.logit_scale.detach().exp().clone())
        self.eval()  # evaluate() restores the mode it found; a shared model must stay in eval mode

    frozen_image_tower = True

    def eval_features(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(images), dim=-1)

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * features @ self.features.T

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.eval_features(images))


class PromptLearner(Method):
    """Learnable context in front of the class names; frozen towers and logit scale."""

    Params = PromptParams
    params: PromptParams
    frozen_image_tower = True
    kd_field: ClassVar[str | None] = None  # name of the KD weight parameter, if the method has one
    scale: torch.Tensor  # buffer: the frozen logit scale s, registered in __init__

    def __init__(self, context: TrialContext, params: PromptParams) -> None:
        super().__init__(context, params)
        # Registered so that parameter counts see it; frozen, and kept in eval mode by train().
        self.model = context.bundle.model.requires_grad_(False).eval()
        self.register_buffer("scale", self.model.logit_scale.detach().exp().clone())
        self.target = build_target(context.bundle, context.classnames, params.n_ctx)
        width, embed_dim = text_dims(self.model)
        self.check_dims("model", context.bundle.name, width, embed_dim)
        upgrade = params.upgrade_model
        if upgrade is not None and (dims := spec_dims(upgrade)) is not None:
            # Fail before training, not after it, when the prompts cannot be carried over.
            self.check_dims("upgrade_model", str(upgrade), *dims)
        self.ctx = torch.nn.Parameter(self._initial_context(width).to(context.device))
        self._features: torch.Tensor | None = None  # class features cached in eval mode

    def check_dims(self, where: str, name: str, width: int, embed_dim: int) -> None:
        """Raise ``InputError`` if a model with these text dimensions cannot take the prompts."""
        ours = self.target.prefix.shape[-1]
        if width != ours:
            raise InputError(
                where,
                (
                    f"{name} has text token width {width}, but the prompts live in width {ours}: learned "
                    f"context vectors are points in the token-embedding space of the text tower, so they "
                    f"cannot be fed to a text tower of another width (a mapping between the two embedding "
                    f"tables would have to be fitted first)"
                ),
            )

    def _initial_context(self, width: int) -> torch.Tensor:
        p, bundle = self.params, self.context.bundle
        if p.ctx_init == "random":
            return torch.randn(p.n_ctx, width, generator=self.context.generator) * 0.02
        tokens = bundle.tokenizer([p.ctx_init]).to(self.scale.device)
        count = int(tokens.argmax(dim=1)[0]) - 1
        if count != p.n_ctx:
            raise InputError("ctx_init", f"{p.ctx_init!r} is {count} tokens, but n_ctx is {p.n_ctx}")
        with torch.no_grad():
            return self.model.token_embedding(tokens)[0, 1 : 1 + count].clone()

    def train(self, mode: bool = True) -> PromptLearner:
        super().train(mode)
        self.model.eval()
        self._features = None  # parameters may change (train) or a new evaluation starts (eval)
        return self

    def prompt_parameters(self) -> list[torch.nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("model.") and p.requires_grad]

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": self.prompt_parameters()}]

    def context_vectors(self, target: PromptTarget) -> torch.Tensor:
        """Context [C, N, D] for each class; CoOp/KgCoOp share one static context."""
        return self.ctx.unsqueeze(0).expand(len(target.classnames), -1, -1)

    def class_features(self, target: PromptTarget) -> torch.Tensor:
        """Normalised text features [C, E] of the assembled prompts on ``target``'s text tower."""
        ctx = self.context_vectors(target).to(target.prefix.dtype)
        embeddings = torch.cat([target.prefix, ctx, target.suffix], dim=1)
        return encode_text_from_embeddings(target.model, embeddings, target.tokens)

    def eval_features(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the image tower is frozen: no gradient flows to it
            return F.normalize(self.model.encode_image(images), dim=-1)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.eval_features(images))

    def logits_from_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            w = self.class_features(self.target)
        else:
            if self._features is None:  # once per evaluation, not per batch
                with torch.no_grad():
                    self._features = self.class_features(self.target)
            w = self._features
        return self.scale * x @ w.T

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            x = F.normalize(self.model.encode_image(images), dim=-1)
        w = self.class_features(self.target)
        ce = F.cross_entropy(self.scale * x @ w.T, labels)
        if self.kd_field is None:
            return {"loss": ce, "ce": ce}
        kd = kd_loss(w, self.target.text(self.zero_shot_templates()))
        return {"loss": ce + getattr(self.params, self.kd_field) * kd, "ce": ce, "kd": kd}

    def posthoc_metrics(self, evaluate: Evaluator) -> dict[str, float]:
        spec = self.params.upgrade_model
        if spec is None:
            return {}
        ctx = self.context
        v1 = evaluate(self)
        v1_zs = evaluate(FixedHead(ctx, self.params, self._zero_shot(ctx.bundle)))
        bundle = load_clip(spec, ctx.device, field="upgrade_model")
        self.check_dims("upgrade_model", bundle.name, *text_dims(bundle.model))
        target = build_target(bundle, ctx.classnames, self.params.n_ctx)
        upgraded = dataclasses.replace(ctx, bundle=bundle)
        with torch.no_grad():  # same learned parameters, the upgraded model's embeddings and towers
            prompts = self.class_features(target)
        v2 = evaluate(FixedHead(upgraded, self.params, prompts))
        v2_zs = evaluate(FixedHead(upgraded, self.params, self._zero_shot(bundle)))
        return compat_metrics(v1, v2, v1_zs, v2_zs)

    def zero_shot_templates(self) -> Sequence[str]:
        """Templates of w^zs and of the zero-shot references; the source's without a KD term."""
        if self.kd_field is None:
            return self.context.templates
        # A method with a KD term declares KDParams (KgCoOp, ContCoOp), which name its templates.
        params = self.params
        assert isinstance(params, KDParams), f"{self.name} has a KD term but no KDParams"
        if params.kd_templates == "ensemble":
            return self.context.templates
        return [params.kd_template]

    def _zero_shot(self, bundle: ClipBundle) -> torch.Tensor:
        """Zero-shot class features [C, E] of ``bundle`` from the KD target's template set."""
        return zero_shot_head(bundle.model, bundle.tokenizer, self.context.classnames, self.zero_shot_templates()).T
