"""The sections of a sweep file: strict pydantic models (unknown keys are errors) for ``model``,
``data``, ``train``, one ``search`` dim, ``scheduler``, ``objective``, ``posthoc``, ``sessions``,
``resources``, ``tracking`` and ``report``. :class:`sweeper.spec.schema.SweepSpec` puts them together.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    model_serializer,
    model_validator,
)

from trainables.config import PosthocConfig, SessionDomain, SessionSplit, TrainConfig, WiseConfig
from trainables.selection import DEFAULT_SELECTION_METRIC

DEFAULT_MODEL = "zoo/tiny-clip-v1"
DEFAULT_REPORT_METRICS = ["id/acc", "ood/avg_acc", "id/ece"]
# ``int`` and ``float`` are field names of SearchDim; these aliases keep its annotations unambiguous.
Int: TypeAlias = int
Float: TypeAlias = float
Bool: TypeAlias = bool


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def picked_union(kind_of, message: str, **tags: Any) -> Any:
    """A union picked by ``kind_of(value)``; tags start with '~' so error paths can drop them."""
    members = [Annotated[t, Tag(f"~{name}")] for name, t in tags.items()]
    # Union over a runtime list of members: the `X | Y` form cannot be spelled for a list.
    union: Any = Union[tuple(members)]  # noqa: UP007
    return Annotated[union, Discriminator(kind_of, custom_error_type="form", custom_error_message=message)]


def str_or_mapping(value: Any) -> str | None:
    return "~str" if isinstance(value, str) else "~map" if isinstance(value, (dict, BaseModel)) else None


def mapping_or_list(value: Any) -> str | None:
    return "~list" if isinstance(value, list) else "~map" if isinstance(value, (dict, BaseModel)) else None


class ModelSpec(StrictModel):
    arch: str
    pretrained: str
    cache_dir: str | None = None


class DataSpec(StrictModel):
    # A discriminated union built by picked_union: pydantic reads it, a type checker cannot.
    source: picked_union(  # type: ignore[valid-type]
        str_or_mapping, "must be shapes, {shapes: {...}} or {imagefolder: PATH}", str=str, map=dict[str, Any]
    ) = "shapes"
    id: str
    ood: list[str]
    ood_val: list[str] = Field(default_factory=list)
    retention: bool = True  # evaluate the source's zero-shot retention tasks (zs/<task>/acc)


class TrainSpec(TrainConfig):
    """The trial's train settings (``trainables.config.TrainConfig``), strictly typed in the file."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SearchDim(StrictModel):
    """One search axis: exactly one of grid / int / float / choice (checked by sweeper.spec.parameter_checks)."""

    grid: list[Any] | None = Field(None, min_length=1)
    int: list[Int] | None = Field(None, min_length=2, max_length=2)
    float: list[Float] | None = Field(None, min_length=2, max_length=2)
    choice: list[Any] | None = Field(None, min_length=1)
    log: Bool = False
    when: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return next(k for k in ("grid", "int", "float", "choice") if getattr(self, k) is not None)

    @property
    def values(self) -> list[Any]:
        """The candidates of a grid / choice dim, or the two ends of a range."""
        return list(getattr(self, self.kind))


class SchedulerSpec(StrictModel):
    kind: Literal["fifo", "asha"] = "fifo"
    grace_period: int = Field(1, ge=1)
    reduction_factor: int = Field(2, ge=2)

    @model_validator(mode="before")
    @classmethod
    def _forms(cls, value: Any) -> Any:
        if value in ("fifo", "asha"):
            return {"kind": value}
        if isinstance(value, dict) and set(value) == {"asha"} and isinstance(value["asha"], (dict, type(None))):
            return {"kind": "asha", **(value["asha"] or {})}
        if isinstance(value, SchedulerSpec) or (isinstance(value, dict) and (not value or "kind" in value)):
            return value  # the constructor's and the dumped form, for round trips
        raise ValueError("must be fifo, asha or {asha: {grace_period: N, reduction_factor: N}}")


class ObjectiveSpec(StrictModel):
    """What the searcher optimises and each trial selects its epoch on. A test metric (``id/*``,
    ``ood/*``, ...) is oracle selection and needs ``oracle: true``."""

    metric: str = DEFAULT_SELECTION_METRIC
    mode: Literal["max", "min"] = "max"
    oracle: bool = False


class ObjectiveItem(ObjectiveSpec):
    """One objective of a multi-objective sweep (``objective: [{metric: ..., mode: ...}, ...]``):
    both keys are required, since no direction is a safe default for the second metric."""

    metric: str
    mode: Literal["max", "min"]


class WiseSpec(WiseConfig):
    """``posthoc.wise``: ``trainables.config.WiseConfig``, strictly typed in the file."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PosthocSpec(PosthocConfig):
    """``posthoc``: steps applied to each trial's trained weights after its last epoch."""

    model_config = ConfigDict(extra="forbid", strict=True)
    wise: WiseSpec | None = None


class SessionDomainSpec(SessionDomain):
    """One entry of ``sessions: [{id: DOMAIN}, ...]``: a session trained on that domain."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SessionSplitSpec(SessionSplit):
    """``sessions: {split: DOMAIN, count: N, by: class|shot, shots: N, order_seed: N}``."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ResourcesSpec(StrictModel):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class TrackingSpec(StrictModel):
    uri: str | None = None
    experiment: str | None = None
    # Where the Optuna study lives (sqlite or PostgreSQL URL); by default beside the MLflow store
    # (``sweeper.run.optuna_storage``). Needed for an optuna-dashboard view of a server's sweeps.
    optuna_storage: str | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Unset, it is left out of dumps: sweeps written before it existed keep their config hash
        # (and ``sweeper resume`` accepts them).
        data: dict[str, Any] = handler(self)
        if self.optuna_storage is None:
            data.pop("optuna_storage", None)
        return data


class ReportSpec(StrictModel):
    rows: list[str] | None = None
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_REPORT_METRICS), min_length=1)
    # The row each cell's delta is taken against: {reference: ft}, or row values such as {L: 8}.
    delta: dict[str, str | int | float | bool] | None = None
