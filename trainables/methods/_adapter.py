"""Shared base of the image-side adapters on frozen CLIP (CLIP-Adapter, Tip-Adapter, Tip-Adapter-F)
and their model-update compatibility evaluation.

Both towers and the logit scale s are frozen; the class head W [D, K] is the frozen model's
hand-written text head (``templates``: one ``template``, or the source's ensemble) and does not
train. Each method maps the L2-normalised image feature f = normalize(F(x)) to class logits with
its own module on top of ``s * f @ W``.

``upgrade_model`` carries the trained module (the adapter's weights, the cache's keys and values,
alpha and beta) UNCHANGED to a model whose image features have the same dimension, as ContCoOp's
comparison does: the module sits in v1's image-feature space, and on v2 it is applied to v2's
image features, with v2's own text head and scale (they are the upgraded model's zero-shot
classifier, not part of the module). Tip-Adapter's cache is carried, not rebuilt with v2: the
point of the comparison is that deep, image-side modules break under an update (methods spec
2.5: rebuilding would be retraining it on v2, whether the paper did is unknown [U]). It reports
the prompt methods' ``compat/*`` metrics, the zero-shot references built from the same templates
as the head.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn.functional as F

from trainables.errors import InputError
from trainables.methods._compat import compat_metrics
from trainables.methods._prompt_learning import FixedHead, spec_dims
from trainables.methods.base import Evaluator, Method, TrialContext
from trainables.methods.params._adapter import AdapterParams
from trainables.models.heads import zero_shot_head
from trainables.models.loading import ClipBundle, load_clip


def text_head(bundle: ClipBundle, context: TrialContext, params: AdapterParams) -> torch.Tensor:
    """The frozen head W [D, K] of ``bundle`` from the chosen template set."""
    templates = context.templates if params.templates == "ensemble" else [params.template]
    return zero_shot_head(bundle.model, bundle.tokenizer, context.classnames, templates)


class ImageAdapter(Method):
    """Frozen CLIP and a fixed text head; subclasses add a module on the image features."""

    Params: ClassVar[type[AdapterParams]] = AdapterParams
    params: AdapterParams
    frozen_image_tower = True
    # Buffers registered in __init__ (annotated here: nn.Module's __getattr__ is untyped).
    head: torch.Tensor
    scale: torch.Tensor

    def __init__(self, context: TrialContext, params: AdapterParams) -> None:
        super().__init__(context, params)
        # Registered so that parameter counts see it; frozen, and kept in eval mode by train().
        self.model = context.bundle.model.requires_grad_(False).eval()
        self.register_buffer("head", text_head(context.bundle, context, params).to(context.device))
        self.register_buffer("scale", self.model.logit_scale.detach().exp().clone())
        upgrade = params.upgrade_model
        if upgrade is not None and (dims := spec_dims(upgrade)) is not None:
            # Fail before training, not after it, when the module cannot be carried over.
            self.check_feature_dim(str(upgrade), dims[1])

    @property
    def feature_dim(self) -> int:
        return int(self.head.shape[0])

    def check_feature_dim(self, name: str, dim: int) -> None:
        """Raise ``InputError`` if an upgraded model's image features cannot feed the module."""
        if dim != self.feature_dim:
            raise InputError(
                "upgrade_model",
                (
                    f"{name} has image features of dimension {dim}, but the adapter was trained on "
                    f"dimension {self.feature_dim}: it cannot be applied to them"
                ),
            )

    def train(self, mode: bool = True) -> ImageAdapter:
        super().train(mode)
        self.model.eval()
        return self

    def eval_features(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the image tower is frozen: no gradient flows to it
            return F.normalize(self.model.encode_image(images), dim=-1)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.eval_features(images))

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(self.logits(images), labels)
        return {"loss": ce, "ce": ce}

    def carried_state(self) -> dict[str, torch.Tensor]:
        """What moves to the upgraded model: everything but the model, its head and its scale."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("model.") and k not in ("head", "scale")}

    def upgraded(self, bundle: ClipBundle) -> ImageAdapter:
        """This method's module, unchanged, on ``bundle``'s image features and text head."""
        self.check_feature_dim(bundle.name, int(text_head(bundle, self.context, self.params).shape[0]))
        context = dataclasses.replace(self.context, bundle=bundle)
        with torch.random.fork_rng(devices=[]):  # the twin's own init draws nothing a trial sees
            twin = type(self)(context, self.params)
        twin.load_state_dict(self.carried_state(), strict=False)
        return twin.eval()

    def posthoc_metrics(self, evaluate: Evaluator) -> dict[str, float]:
        spec = self.params.upgrade_model
        if spec is None:
            return {}
        context = self.context
        v1 = evaluate(self)
        v1_zs = evaluate(FixedHead(context, self.params, self.head.T))
        bundle = load_clip(spec, context.device, field="upgrade_model")
        twin = self.upgraded(bundle)
        v2 = evaluate(twin)
        v2_zs = evaluate(FixedHead(twin.context, self.params, twin.head.T))
        return compat_metrics(v1, v2, v1_zs, v2_zs)
