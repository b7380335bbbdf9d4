"""The contract every fine-tuning method implements, and the shared image-classifier base.

A method declares its hyperparameters (``Params``, a strict pydantic model with the papers' defaults
and ranges, in ``trainables/methods/params/``, which imports without torch), what it trains
(``parameter_groups``), its per-step loss terms (``training_loss``) and how it classifies at
evaluation (``logits``). Optional hooks: a stage before training (``prepare``: an LP stage,
importance scoring), a post-hoc step (``after_training``: weight interpolation, adapter merge),
extra end-of-training metrics and artifacts (``posthoc_metrics``, ``artifacts``: the linear
probe's metrics, model-update compatibility), and how it encodes images and class texts for the
zero-shot retention metrics (``retention_features``, ``text_head``).

WiSE (``trainables.posthoc``): a method whose ``Params.interpolable`` is set exposes its weights in
the zero-shot model's parameter space through ``zero_shot_weights`` (by default the parameters that
train; LoRA and LoRSU give their merged weights), and the loop evaluates
``(1 - alpha) * theta_zs + alpha * theta`` at each alpha of the trial's ``posthoc.wise`` as
``wise/<alpha>/<metric>``. ``wise_alpha`` is the alpha of the trial's own model (1; wise_ft's is
its ``alpha``) and ``wise_curve_alphas`` the curve a method evaluates unasked (none; wise_ft's
grid). Data, optimiser, schedule, evaluation (with the zero-shot point and effective robustness),
reporting and checkpointing belong to the loop, so every method is compared on identical terms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from trainables.methods.params.base import MethodParams
from trainables.models.heads import zero_shot_head
from trainables.models.loading import ClipBundle

if TYPE_CHECKING:  # trainables.posthoc needs this module's Method for its own hints
    from trainables.data.base import DomainSplit
    from trainables.posthoc import WeightInterpolation


@dataclass
class TrialContext:
    """What a method may use: the model, the task's class names and prompts, a seeded RNG, and the
    ID validation split (never a test split) for choices fitted on held-out data after training
    (TPGM's projection radii); None outside the loop."""

    bundle: ClipBundle
    classnames: Sequence[str]
    templates: Sequence[str]
    generator: torch.Generator
    device: torch.device
    validation: DomainSplit | None = None


Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
# Evaluates a method (this one, or a variant of it such as an interpolated or transferred copy) on
# the trial's ID and OOD test splits; returns the standard metric names (id/acc, ood/avg_acc, ...).
Evaluator = Callable[["Method"], dict[str, float]]


class Method(torch.nn.Module):
    """Base class; subclasses are registered with ``@trainables.registry.register(name)``."""

    name: ClassVar[str] = ""
    # The method's declaration (``trainables/methods/params/``): hyperparameters, checks, recipe,
    # paper; registration requires it to be the class declared under ``name``.
    Params: ClassVar[type[MethodParams]] = MethodParams
    # Buffers that training changes (masks chosen in prepare, EMA vectors); saved in checkpoints.
    checkpoint_buffers: ClassVar[tuple[str, ...]] = ()
    # True when the image features behind ``logits`` never change (a frozen image tower): each
    # test split is then encoded once per trial and its features reused at every evaluation.
    frozen_image_tower: ClassVar[bool] = False
    # True when ``after_training`` changes what the model computes (WiSE-FT's interpolation): the
    # earlier epochs evaluate another model, so the trial reports its last epoch, not the best one.
    final_epoch_only: ClassVar[bool] = False
    # True when ``prepare`` is a per-session choice (LoRSU scores and selects its parameters again in
    # every continual session); False when it initialises the method once (an LP stage, a text bank).
    prepare_each_session: ClassVar[bool] = False

    def __init__(self, context: TrialContext, params: MethodParams) -> None:
        super().__init__()
        self.context = context
        self.params = params
        self.eval_feature_cache: dict[str, torch.Tensor] = {}  # filled by evaluation when frozen
        # theta_zs for WiSE, snapshotted before prepare: by the method when it interpolates itself
        # (wise_ft), else by the loop when the trial asks for posthoc.wise. Not in checkpoints.
        self.interpolation: WeightInterpolation | None = None

    @property
    def trains(self) -> bool:
        """False for a method evaluated as it is, without optimisation (its ``Params.trains``)."""
        return self.Params.trains

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups; by default every parameter that requires a gradient."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms of one step; the key ``loss`` is what is minimised, the others are logged."""
        raise TypeError(f"method {self.name!r} does not train")

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits used for evaluation."""
        raise TypeError(f"method {self.name!r} defines no classifier")

    def eval_features(self, images: torch.Tensor) -> torch.Tensor:
        """The image features ``logits`` is computed from; ``logits_from_features`` finishes the job.
        Evaluation caches them when ``frozen_image_tower`` is set."""
        return images

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits from ``eval_features``; equal to ``logits`` on the images."""
        return self.logits(features)

    def prepare(self, batches: Batches, validation: Batches | None = None) -> None:
        """Optional stage before the first epoch, on the training data without augmentation (an
        LP stage, importance scoring). ``validation`` holds the ID validation split's batches in
        the same form (normalised, un-augmented), for choices made on held-out data (the LP
        stage's C); None when there is none, and methods that do not need it ignore it. It fills
        existing state and never creates parameters, so a restored checkpoint needs no second
        call. It also runs, before evaluation, for a method that does not train (Tip-Adapter's
        cache)."""

    def reports_final_epoch(self) -> bool:
        """Whether the trial reports its last epoch rather than the one best on validation
        (``final_epoch_only``, or a choice of the method's parameters)."""
        return self.final_epoch_only

    def begin_session(self) -> None:
        """Optional step before each continual session after the first, before its optimiser is
        built (LoRA and LoRSU fold their updates into the weights and start new ones); the method
        otherwise carries on from the previous session's state."""

    def after_training(self) -> None:
        """Optional post-hoc step (weight interpolation, adapter merge); once, after the last
        epoch of the last session."""

    def posthoc_metrics(self, evaluate: Evaluator) -> dict[str, float]:
        """Extra metrics computed once, after the last epoch (e.g. ``lp/*``, ``compat/*``)."""
        return {}

    def zero_shot_weights(self) -> dict[str, torch.Tensor]:
        """The weights WiSE interpolates, by name: tensors of the zero-shot model's parameter space
        that training changes. By default the parameters that train; live parameters after
        ``after_training`` (the interpolation writes into them)."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    @property
    def wise_alpha(self) -> float:
        """The WiSE alpha of the model the trial reports: 1, the trained weights."""
        return 1.0

    def wise_curve_alphas(self) -> list[float]:
        """The WiSE curve the method evaluates without ``posthoc.wise``: none."""
        return []

    def artifacts(self) -> dict[str, str]:
        """Text artifacts of the finished trial, file name -> content (e.g. a curve as CSV)."""
        return {}

    def retention_features(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image features for zero-shot retention tasks (the current image tower)."""
        return F.normalize(self.context.bundle.model.encode_image(images), dim=-1)

    def text_head(self, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
        """Zero-shot class weights [D, K] from the current text tower and hand-written templates."""
        bundle = self.context.bundle
        return zero_shot_head(bundle.model, bundle.tokenizer, classnames, templates)

    def parameter_metrics(self) -> dict[str, float]:
        """``params/trainable`` (entries the optimiser may change) and its fraction of the model."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.context.bundle.model.parameters())
        return {"params/trainable": float(trainable), "params/trainable_fraction": trainable / total}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The state that training changes, for checkpoints: parameters that require a gradient,
        and the buffers named in ``checkpoint_buffers``."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        names.update(self.checkpoint_buffers)
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in names}


class ImageClassifier(Method):
    """CLIP image tower plus a linear head W initialised to the zero-shot head.

    Logits are ``s * normalize(F(x)) @ W`` with ``s = exp(logit_scale)`` of the pretrained model,
    kept fixed (the Lipsum-FT reference fixes s = 100, CLIP's own value). The text tower is only
    used to build the head and is frozen; so is the logit scale.
    """

    scale: torch.Tensor  # buffer: s, registered in __init__

    def __init__(self, context: TrialContext, params: MethodParams) -> None:
        super().__init__(context, params)
        bundle = context.bundle
        self.model = bundle.model
        head = zero_shot_head(self.model, bundle.tokenizer, context.classnames, context.templates)
        self.head = torch.nn.Parameter(head.to(context.device))
        self.register_buffer("scale", self.model.logit_scale.detach().exp().clone())
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        for parameter in self.model.visual.parameters():
            parameter.requires_grad_(self.trains)
        self.head.requires_grad_(self.trains)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(images), dim=-1)

    def eval_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_features(images)

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * features @ self.head

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.image_features(images))

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(self.logits(images), labels)
        return {"loss": ce, "ce": ce}
