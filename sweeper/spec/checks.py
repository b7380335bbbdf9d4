"""The checks of a parsed sweep that need more than its types, run in file order by :func:`validate`:
the method, model, data, seeds, parameters and search space (:mod:`sweeper.spec.parameter_checks`),
searcher, metric names (:mod:`sweeper.spec.metric_checks`), references, tracking URI and Optuna storage.

Each check raises :class:`InputError` whose ``where`` is the field path inside the file;
:func:`sweeper.spec.loading.from_mapping` adds the file name in front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper.run.optuna_storage import check_storage_url, sqlite_path, storage_url
from sweeper.spec.metric_checks import check_eval_every, check_metric, check_objective, check_retention
from sweeper.spec.metric_checks import listing as _listing
from sweeper.spec.model_checks import context_length
from sweeper.spec.parameter_checks import check_parameters
from sweeper.spec.references import check_references
from sweeper.spec.session_checks import check_sessions
from sweeper.tracking.uri import check_tracking_uri, resolve_uri
from trainables import registry
from trainables.data.image_files import check_sample
from trainables.data.imagefolder import DomainFolderSource
from trainables.data.sources import open_source
from trainables.errors import InputError

if TYPE_CHECKING:
    from sweeper.spec.schema import SweepSpec
    from trainables.methods.params.base import MethodParams


def validate(spec: SweepSpec, explicit_report_metrics: bool = True) -> int:
    """Run every check in file order; returns the model's text context length."""
    methods = check_methods(spec)
    length = context_length(spec.model)
    check_data(spec)
    check_seeds(spec.seeds)
    for method in methods:
        check_parameters(spec, method, length, methods)
    check_searcher(spec)
    if not spec.data.ood and not explicit_report_metrics:
        spec.report.metrics = [m for m in spec.report.metrics if not m.startswith("ood/")]
    check_objective_list(spec)
    for i, objective in enumerate(spec.objectives):
        check_metric(objective.metric, spec.data.ood, spec.objective_field(i), spec.data.ood_val)
    check_posthoc(spec)
    check_sessions(spec)
    check_objective(spec)
    check_eval_every(spec)
    for i, metric in enumerate(spec.report.metrics):
        check_metric(metric, spec.data.ood, f"report.metrics[{i}]", spec.data.ood_val)
    check_retention(spec)
    for i, row in enumerate(spec.report.rows or []):
        if row not in spec.search:
            raise InputError(f"report.rows[{i}]", f"{row!r} is not a search key; searched: {_listing(spec.search)}")
    check_references(spec, length)
    check_tracking_uri(spec.tracking.uri, "tracking.uri")
    check_optuna_storage(spec)
    return length


def check_methods(spec: SweepSpec) -> list[type[MethodParams]]:
    """The declarations (hyperparameter classes) of the sweep's methods: one, or each value of
    ``search.method``."""
    if spec.method is not None:
        cls = registry.params(spec.method, field="method")
        _check_method_conditions(spec, [spec.method])
        return [cls]
    dim = spec.search["method"]
    classes = []
    for i, name in enumerate(dim.values):
        where = f"method.{dim.kind}[{i}]"
        if not isinstance(name, str):
            raise InputError(where, f"must be a method name, got {name!r}")
        if name in dim.values[:i]:
            raise InputError(where, f"{name!r} is listed twice")
        classes.append(registry.params(name, field=where))
    _check_method_conditions(spec, dim.values)
    return classes


def _check_method_conditions(spec: SweepSpec, methods: list[Any]) -> None:
    """``when: {method: M}`` on a search dim must name a method the sweep runs (else the dim is never searched)."""
    for key, dim in spec.search.items():
        if key != "method" and dim.when and "method" in dim.when and dim.when["method"] not in methods:
            raise InputError(
                f"search.{key}.when.method", f"never holds: the sweep's methods are {_listing(map(repr, methods))}"
            )


def check_data(spec: SweepSpec) -> None:
    """The domains exist in the source, each named once; an image folder's files that trials will
    read decode (a sample of them, see :mod:`trainables.data.image_files`)."""
    data = spec.data
    source = open_source(data.source, field="data.source")
    known = f"known domains: {', '.join(source.domains)}"
    if data.id not in source.domains:
        raise InputError("data.id", f"unknown domain {data.id!r}; {known}")
    for i, domain in enumerate(data.ood):
        if domain == data.id:
            raise InputError(
                f"data.ood[{i}]", f"{domain!r} is the ID domain (data.id); OOD domains must differ from it"
            )
        if domain not in source.domains:
            raise InputError(f"data.ood[{i}]", f"unknown domain {domain!r}; {known}")
        if domain in data.ood[:i]:
            raise InputError(f"data.ood[{i}]", f"{domain!r} is listed twice")
    for i, domain in enumerate(data.ood_val):
        where = f"data.ood_val[{i}]"
        if domain == data.id or domain in data.ood:
            # Validating on a test domain's own data is DomainBed's oracle, not a held-out domain.
            raise InputError(
                where,
                f"{domain!r} is also {'data.id' if domain == data.id else 'in data.ood'}; "
                "a held-out validation domain must be neither trained nor tested on",
            )
        if domain not in source.domains:
            raise InputError(where, f"unknown domain {domain!r}; {known}")
        if domain in data.ood_val[:i]:
            raise InputError(where, f"{domain!r} is listed twice")
        if domain in getattr(source, "test_only", ()):
            raise InputError(where, f"{domain!r} is a test-only set and has no validation split")
    if isinstance(source, DomainFolderSource):
        # The splits a trial reads (trainables.loop): the ID domain's three, OOD test, held-out val.
        read = [(data.id, s) for s in ("train", "val", "test")]
        read += [(d, "test") for d in data.ood] + [(d, "val") for d in data.ood_val]
        check_sample(source.root, ((f"{d}/{s}", source.rows(d, s)) for d, s in read), source.field)


def check_objective_list(spec: SweepSpec) -> None:
    """A list of objectives is not empty and names each metric once."""
    if not spec.objectives:
        raise InputError("objective", "the list is empty; give one objective, or several for a Pareto front")
    names = [o.metric for o in spec.objectives]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InputError(spec.objective_field(i), f"{name!r} is listed twice")


def check_posthoc(spec: SweepSpec) -> None:
    """``posthoc.wise`` interpolates trained weights with the zero-shot ones: every method of the
    sweep must train weights that live in the zero-shot model's parameter space, and the domains
    evaluated at each alpha must be test domains of the sweep."""
    wise = spec.posthoc.wise
    if wise is None:
        return
    for method in spec.methods:
        if not registry.params(method).interpolable:
            able = _listing(m for m in registry.names() if registry.params(m).interpolable)
            raise InputError(
                "posthoc.wise",
                f"method {method!r} trains no weights in the zero-shot model's parameter space (prompt vectors, a "
                f"probe's head, or nothing), so WiSE interpolation means nothing for it; methods that can: {able}",
            )
    for i, domain in enumerate(wise.domains or []):
        if domain not in (spec.data.id, *spec.data.ood):
            raise InputError(
                f"posthoc.wise.domains[{i}]",
                f"{domain!r} is not a test domain of the sweep; data.id and data.ood: "
                + _listing([spec.data.id, *spec.data.ood]),
            )


def check_optuna_storage(spec: SweepSpec) -> None:
    """``tracking.optuna_storage`` is a sqlite or PostgreSQL URL, of an Optuna searcher, and not
    the sqlite MLflow store itself (the two cannot share a file: ``sweeper.run.optuna_storage``)."""
    url = spec.tracking.optuna_storage
    if url is None:
        return
    field = "tracking.optuna_storage"
    if spec.searcher == "grid":
        raise InputError(field, "searcher grid runs no Optuna study; remove this key or use an Optuna searcher")
    check_storage_url(url, field)
    mlflow_store = resolve_uri(spec.tracking.uri)
    both_sqlite = url.startswith("sqlite:") and mlflow_store.startswith("sqlite:")
    if both_sqlite and sqlite_path(url).resolve() == sqlite_path(mlflow_store).resolve():
        raise InputError(
            field,
            "is the sqlite MLflow store (tracking.uri); Optuna's tables cannot share its file (both keep an "
            f"alembic_version table). Leave this key out to use {storage_url(mlflow_store)}",
        )


def check_seeds(seeds: list[int]) -> None:
    for i, seed in enumerate(seeds):
        if seed in seeds[:i]:
            raise InputError(f"seeds[{i}]", f"seed {seed} is listed twice")


def check_searcher(spec: SweepSpec) -> None:
    if spec.searcher == "grid":
        for key, dim in spec.search.items():
            if dim.kind not in ("grid", "choice"):
                raise InputError(
                    f"search.{key}",
                    f"searcher grid enumerates grid and choice dims only, not a {dim.kind} range; "
                    "use grid: [...] or searcher tpe / random",
                )
        if spec.num_samples != 1:
            raise InputError(
                "num_samples", "searcher grid runs every combination once; num_samples must be 1 (or omitted)"
            )
    elif not spec.search:
        raise InputError("search", f"searcher {spec.searcher} needs at least one search dim")
    if spec.searcher == "gp":
        # Optuna 5's GPSampler models the dims every trial has (their intersection) and draws any
        # other dim at random, with a warning per trial: a conditional dim is never modelled.
        conditional = [key for key, dim in spec.search.items() if dim.when]
        if conditional:
            raise InputError(
                "searcher",
                f"gp models only dims that every trial has, and {_listing(f'search.{k}' for k in conditional)} "
                f"{'has' if len(conditional) == 1 else 'have'} a when: condition (gp would draw "
                f"{'it' if len(conditional) == 1 else 'them'} at random); use searcher tpe, which models "
                "conditional dims, or drop the condition",
            )
