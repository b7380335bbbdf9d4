"""The checks of a sweep's continual ``sessions`` (``trainables.continual``): known domains, enough
classes or images to cut, methods that train, and no key that means nothing per session.

Each check raises :class:`InputError` whose ``where`` is the field path inside the sweep file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweeper.spec.metric_checks import CONTINUAL_PREFIXES, listing
from trainables import registry
from trainables.data.image_files import check_sample
from trainables.data.imagefolder import DomainFolderSource
from trainables.data.sources import open_source
from trainables.errors import InputError

if TYPE_CHECKING:
    from sweeper.spec.schema import SweepSpec


def check_sessions(spec: SweepSpec) -> None:
    """Run every check of ``sessions``; without it, no metric may be a continual one."""
    if spec.sessions is None:
        _no_continual_metrics(spec)
        return
    source = open_source(spec.data.source, field="data.source")
    known = f"known domains: {', '.join(source.domains)}"
    if isinstance(spec.sessions, list):
        domains = []
        for i, session in enumerate(spec.sessions):
            if session.id not in source.domains:
                raise InputError(f"sessions[{i}].id", f"unknown domain {session.id!r}; {known}")
            if session.id in domains:
                raise InputError(f"sessions[{i}].id", f"{session.id!r} is listed twice; each session is another domain")
            domains.append(session.id)
    else:
        cut = spec.sessions
        if cut.split not in source.domains:
            raise InputError("sessions.split", f"unknown domain {cut.split!r}; {known}")
        classes = len(source.classnames)
        if cut.by == "class" and cut.count > classes:
            raise InputError(
                "sessions.count", f"{cut.count} sessions by class need as many classes; the source has {classes}"
            )
        domains = [cut.split]
    if isinstance(source, DomainFolderSource):
        read = [(d, s) for d in domains for s in ("train", "test")]
        check_sample(source.root, ((f"{d}/{s}", source.rows(d, s)) for d, s in read), source.field)
    for method in spec.methods:
        if not registry.params(method).trains:
            trained = listing(m for m in registry.names() if registry.params(m).trains)
            raise InputError(
                "sessions",
                f"method {method!r} trains nothing, so sessions would change nothing; methods that train: {trained}",
            )
    if spec.scheduler.kind == "asha":
        raise InputError(
            "scheduler",
            "asha compares trials epoch by epoch, and with sessions the epochs of different sessions train on "
            "different data; use scheduler: fifo with sessions",
        )
    if spec.posthoc.wise is not None:
        raise InputError(
            "posthoc.wise",
            "WiSE interpolates with the zero-shot weights once, after one fine-tuning; it is not defined over "
            "continual sessions; remove posthoc or sessions",
        )


def _no_continual_metrics(spec: SweepSpec) -> None:
    named = [(spec.objective_field(i), o.metric) for i, o in enumerate(spec.objectives)]
    named += [(f"report.metrics[{i}]", metric) for i, metric in enumerate(spec.report.metrics)]
    for where, metric in named:
        if metric.removeprefix("last/").startswith(CONTINUAL_PREFIXES):
            raise InputError(
                where, f"{metric!r} is logged by continual trials only; add sessions: [...] or use another metric"
            )
