"""A trial's configuration: what ``python -m trainables.run trial.yaml`` reads and a sweep builds.

Plain pydantic models, importable without torch, so that the driver checks a sweep file and
builds its trials' configurations without paying for torch's import.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trainables import registry
from trainables.recipes import model_family, recipe
from trainables.selection import Selection

Precision = Literal["auto", "fp32", "bf16"]


class TrialResources(BaseModel):
    """The trial's share of its node, as requested from Ray (``resources`` of the sweep file)."""

    model_config = ConfigDict(extra="forbid")
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | dict[str, Any] = "shapes"
    id: str
    ood: list[str] = []
    # Held-out OOD validation domains: evaluated on their val split every epoch as oodval/*, never
    # part of ood/avg_acc (DomainBed's leave-one-domain-out validation).
    ood_val: list[str] = []
    # The source's zero-shot retention tasks (zs/<task>/acc); false saves their evaluation.
    retention: bool = True


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(3e-4, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)  # SGD only
    weight_decay: float = Field(0.0, ge=0)
    warmup: float = Field(0.1, ge=0, lt=1)  # fraction of all steps
    warmup_epochs: float | None = Field(None, ge=0)  # when set, the warm-up lasts this many epochs
    warmup_lr: float | None = Field(None, gt=0)  # constant warm-up at this lr; unset: linear from 0
    grad_clip: float | None = Field(None, gt=0)  # max global gradient norm; unset: no clipping
    crop_scale: list[float] = Field([0.8, 1.0], min_length=2, max_length=2)  # RandomResizedCrop area
    crop_ratio: list[float] = Field([0.9, 1.1], min_length=2, max_length=2)  # and aspect ratio
    # OOD domains and retention tasks are evaluated every this many epochs (and always at the
    # last); the ID and validation splits, which the searcher and ASHA read, every epoch.
    eval_every: int = Field(1, ge=1)
    # Forward-pass precision (trainables.device.autocast): auto = bf16 on a bf16-capable CUDA GPU,
    # fp32 elsewhere; bf16 also on a CPU, where one with bf16 instructions trains about 1.4x faster.
    precision: Precision = "auto"

    @field_validator("crop_scale", "crop_ratio")
    @classmethod
    def _range(cls, value: list[float]) -> list[float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError(f"must be [low, high] with 0 < low <= high, got {value}")
        return value

    @model_validator(mode="after")
    def _crop_area(self) -> TrainConfig:
        if self.crop_scale[1] > 1:
            raise ValueError(f"crop_scale: the crop's area fraction is at most 1, got {self.crop_scale}")
        return self


TRAIN_KEYS: tuple[str, ...] = tuple(TrainConfig.model_fields)
DEFAULT_WISE_ALPHAS: tuple[float, ...] = tuple(k / 10 for k in range(11))


class WiseConfig(BaseModel):
    """WiSE-FT's weight interpolation after training, ``(1 - alpha) * theta_zs + alpha * theta``,
    evaluated at each alpha (``posthoc.wise`` of the sweep file)."""

    model_config = ConfigDict(extra="forbid")
    alphas: list[float] = Field(default_factory=lambda: list(DEFAULT_WISE_ALPHAS), min_length=1)
    # The test domains evaluated at each alpha (each costs one evaluation); unset: data.id and every
    # data.ood domain. The validation splits are always evaluated: alpha is chosen on them.
    domains: list[str] | None = None

    @field_validator("alphas")
    @classmethod
    def _alphas(cls, value: list[float]) -> list[float]:
        for i, alpha in enumerate(value):
            if not 0 <= alpha <= 1:
                raise ValueError(f"entry {i} ({alpha}) is outside [0, 1] (0: the zero-shot model, 1: the trained one)")
            if alpha in value[:i]:
                raise ValueError(f"entry {i} ({alpha}) is listed twice")
        return sorted(value)


class PosthocConfig(BaseModel):
    """Steps applied to a trial's trained weights after its last epoch."""

    model_config = ConfigDict(extra="forbid")
    wise: WiseConfig | None = None


class SessionDomain(BaseModel):
    """One continual session that trains on a domain's train split and is tested on its test split."""

    model_config = ConfigDict(extra="forbid")
    id: str


class SessionSplit(BaseModel):
    """Continual sessions cut from one domain (CL-5/10/20 style): its classes in ``count`` groups
    (``by: class``, a fixed permutation split as ``np.array_split`` does, as LoRSU's code splits
    GTSRB or Aircraft) or its training images in ``count`` disjoint shards over every class
    (``by: shot``); ``shots`` keeps that many training images per class in each session."""

    model_config = ConfigDict(extra="forbid")
    split: str
    count: int = Field(ge=2)
    by: Literal["class", "shot"] = "class"
    shots: int | None = Field(None, ge=1)
    # Seeds the class permutation and the choice of shots: the same sessions for every trial.
    order_seed: int = Field(0, ge=0)


Sessions = list[SessionDomain] | SessionSplit


class TrialConfig(BaseModel):
    """Everything one trial needs; also the schema of ``python -m trainables.run trial.yaml``."""

    model_config = ConfigDict(extra="forbid")
    method: str
    model: str | dict[str, Any] = "zoo/tiny-clip-v1"
    data: DataConfig
    train: TrainConfig = TrainConfig()
    params: dict[str, Any] = {}
    seed: int = 0
    device: str = "auto"
    # The metric the trial selects its reported epoch on (``val/acc`` unless the sweep's
    # objective is another validation metric).
    selection: Selection = Selection()
    # After training: WiSE interpolation with the zero-shot weights (methods that are ``interpolable``).
    posthoc: PosthocConfig = PosthocConfig()
    # Continual sessions (``trainables.continual``): each fine-tunes the previous one's weights for
    # ``train.epochs`` epochs on its own data; unset, the trial is one ordinary session on data.id.
    sessions: Sessions | None = None
    # Where the trial runs, not what it computes: the sweep leaves it out of the config hash.
    resources: TrialResources = TrialResources()

    @model_validator(mode="after")
    def _recipe_train_defaults(self) -> TrialConfig:
        """Fill the train keys the trial leaves unset from the method's recipe for the model."""
        defaults = recipe(registry.params(self.method), model_family(self.model))
        unset = {k: v for k, v in defaults.items() if k not in self.train.model_fields_set}
        if unset:
            self.train = TrainConfig(**{**self.train.model_dump(exclude_unset=True), **unset})
        return self
