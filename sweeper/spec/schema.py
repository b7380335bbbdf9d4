"""The sweep file's schema: :class:`SweepSpec`, a strict pydantic model (unknown keys are errors)
of the sections in :mod:`sweeper.spec.sections`, and what a spec derives from its fields (a point's
method parameters and train settings, the config hash).

:func:`sweeper.spec.loading.load` builds one from a file and runs the checks that need more than
these types (:mod:`sweeper.spec.checks`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    model_validator,
)

from sweeper.spec import model_checks
from sweeper.spec.sections import (
    DEFAULT_MODEL,
    DataSpec,
    ModelSpec,
    ObjectiveItem,
    ObjectiveSpec,
    PosthocSpec,
    ReportSpec,
    ResourcesSpec,
    SchedulerSpec,
    SearchDim,
    SessionDomainSpec,
    SessionSplitSpec,
    StrictModel,
    TrackingSpec,
    TrainSpec,
    mapping_or_list,
    picked_union,
    str_or_mapping,
)
from trainables import registry
from trainables.config import TRAIN_KEYS
from trainables.methods.params.base import MethodParams
from trainables.recipes import model_family, recipe


class SweepSpec(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # One method, or None when the methods are searched: ``method: {choice: [...]}`` in the file
    # becomes the first search dim, ``search.method``, so other dims can depend on it with ``when``.
    method: str | None = None
    model: picked_union(  # type: ignore[valid-type]  # a discriminated union, as DataSpec.source
        str_or_mapping, "must be zoo/<name> or {arch: ..., pretrained: ...}", str=str, map=ModelSpec
    ) = DEFAULT_MODEL
    data: DataSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    fixed: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, SearchDim] = Field(default_factory=dict)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    searcher: Literal["grid", "tpe", "random", "nsga2", "gp"] = "grid"
    num_samples: int = Field(1, ge=1)
    search_seed: int = 0
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    # One objective, or a list of them for a multi-objective search (a Pareto front).
    objective: picked_union(  # type: ignore[valid-type]  # a discriminated union, as DataSpec.source
        mapping_or_list,
        "must be {metric: ..., mode: ...} or a list of them",
        map=ObjectiveSpec,
        list=list[ObjectiveItem],
    ) = Field(default_factory=ObjectiveSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    max_concurrent: int | None = Field(None, ge=1)
    max_retries: int = Field(2, ge=0)
    posthoc: PosthocSpec = Field(default_factory=PosthocSpec)
    # Continual sessions: a list of domains, or one domain cut by class or shot (trainables.continual).
    sessions: (
        picked_union(  # type: ignore[valid-type]  # a discriminated union, as DataSpec.source
            mapping_or_list,
            "must be a list of {id: DOMAIN} or {split: DOMAIN, count: N}",
            map=SessionSplitSpec,
            list=Annotated[list[SessionDomainSpec], Field(min_length=2)],
        )
        | None
    ) = None
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    # Methods run at their defaults beside the sweep, once per seed: the rows an ablation is read
    # against (``sweeper.spec.references``).
    reference: list[str] = Field(default_factory=list)

    _path: Path | None = PrivateAttr(None)
    _context_length: int | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _searched_method(cls, value: Any) -> Any:
        if not isinstance(value, dict) or not isinstance(value.get("method"), dict):
            return value
        dim = value["method"]
        if not dim or set(dim) - {"choice", "grid"} or len(dim) != 1:
            raise ValueError("method must be a method name, {choice: [m1, m2, ...]} or {grid: [m1, m2, ...]}")
        search = value.get("search") or {}
        if not isinstance(search, dict) or "method" in search:
            raise ValueError("method is searched twice: give it either as method: {choice: [...]} or under search")
        return {**value, "method": None, "search": {"method": dim, **search}}

    @model_validator(mode="after")
    def _one_method_source(self) -> SweepSpec:
        if self.method is None and "method" not in self.search:
            raise ValueError("method: this key is required (a method name, or {choice: [...]} to search methods)")
        if self.method is not None and "method" in self.search:
            raise ValueError(f"method is both fixed ({self.method!r}) and searched (search.method); keep one")
        return self

    @property
    def objectives(self) -> list[ObjectiveSpec]:
        """Every objective, in file order: one for a single-objective sweep."""
        return list(self.objective) if isinstance(self.objective, list) else [self.objective]

    @property
    def primary_objective(self) -> ObjectiveSpec:
        """The first objective: what each trial selects its epoch on (when it is a validation
        metric) and what single-metric views (ASHA, ``confirm``) rank by."""
        return self.objectives[0]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def objective_field(self, index: int, key: str = "metric") -> str:
        """Where objective ``index``'s ``key`` is in the file: ``objective.metric``, ``objective[1].metric``."""
        return f"objective.{key}" if not isinstance(self.objective, list) else f"objective[{index}].{key}"

    @property
    def methods(self) -> list[str]:
        """The method, or every method the sweep searches over."""
        return [self.method] if self.method is not None else [str(m) for m in self.search["method"].values]

    def method_for(self, point: dict[str, Any]) -> str | None:
        """The method of a searched point; None for a method-searching sweep's base config."""
        return point.get("method", self.method)

    def _method_fields(self, point: dict[str, Any]) -> set[str]:
        method = self.method_for(point)
        candidates = [method] if method is not None else self.methods
        return {f for m in candidates for f in registry.params(m).model_fields}

    @property
    def path(self) -> Path | None:
        """The file this spec was loaded from (not part of dumps or the hash)."""
        return self._path

    @property
    def context_length(self) -> int:
        """The model's text context length, found during validation."""
        if self._context_length is None:
            self._context_length = model_checks.context_length(self.model)
        return self._context_length

    @property
    def search_keys(self) -> list[str]:
        return list(self.search)

    @property
    def report_rows(self) -> list[str]:
        """Row keys of the ablation table: ``report.rows``, or the search keys."""
        return list(self.report.rows) if self.report.rows is not None else self.search_keys

    def method_keys(self, point: dict[str, Any]) -> dict[str, Any]:
        """``fixed`` overridden by ``point``, restricted to the method's hyperparameters (to those
        of any searched method for a base config without one)."""
        names = self._method_fields(point)
        return {k: v for k, v in {**self.fixed, **point}.items() if k in names}

    def method_params(self, point: dict[str, Any]) -> MethodParams:
        method = self.method_for(point)
        if method is None:
            raise TypeError("the point names no method")
        return registry.params(method)(**self.method_keys(point))

    def explicit_train(self) -> dict[str, Any]:
        """The train keys the file sets, in ``train`` or as fixed train keys."""
        names = self._method_fields({})
        fixed = {k: v for k, v in self.fixed.items() if k in TRAIN_KEYS and k not in names}
        return {**self.train.model_dump(mode="json", exclude_unset=True), **fixed}

    def train_config(self, point: dict[str, Any]) -> TrainSpec:
        """The point's train settings: the method's recipe for the model's family, then ``train``,
        then the train keys of ``fixed`` and ``point``."""
        names = self._method_fields(point)
        method = self.method_for(point)
        family = model_family(self.model)
        defaults = recipe(registry.params(method), family) if method is not None else {}
        overrides = {k: v for k, v in {**self.fixed, **point}.items() if k in TRAIN_KEYS and k not in names}
        return TrainSpec.model_validate({**defaults, **self.train.model_dump(exclude_unset=True), **overrides})

    def canonical(self) -> dict[str, Any]:
        """The JSON form that :meth:`config_hash` hashes (the file path is not part of it). An unset
        ``posthoc`` or ``sessions`` is left out, so that sweeps written before it existed keep their hash."""
        dump = self.model_dump(mode="json")
        if self.posthoc.wise is None:
            dump.pop("posthoc")
        if self.sessions is None:
            dump.pop("sessions")
        return dump

    def config_hash(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]
