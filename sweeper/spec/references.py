"""Reference methods of a sweep (``reference: [zeroshot, ft]``): the rows an ablation is read against.

Each reference method runs at its paper defaults, once per seed, under the sweep's data, model and
train settings (those the file sets; the rest from the method's recipe, as for any trial). Its
trials carry the tag ``sweeper.reference`` and the report shows them as labelled rows above the
ablation. They are trials of the sweep's own launch, so they resume and are tracked with it, and a
searcher never sees their results: they would steer it towards another method's optimum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainables.errors import InputError

if TYPE_CHECKING:
    from sweeper.spec.schema import SweepSpec

REFERENCE = "reference"  # the key a reference trial's point carries (and the results column)
REFERENCE_TAG = "sweeper.reference"
# Objectives that only some methods compute: a reference could not report them.
_METHOD_SPECIFIC = ("compat/", "wise/", "lp/", "tpgm/", "last/compat/", "last/wise/", "last/lp/", "last/tpgm/")


def reference_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """One point per reference method (without seed): ``{"method": m, "reference": m}``."""
    return [{"method": name, REFERENCE: name} for name in spec.reference]


def reference_trials(spec: SweepSpec) -> int:
    """Trials the references add to the sweep: methods times seeds."""
    return len(spec.reference) * len(spec.seeds)


def check_references(spec: SweepSpec, context_length: int) -> None:
    """Each reference is a known method other than the swept ones, listed once, whose defaults fit
    the model, and which reports the sweep's objective; raises ``InputError`` naming ``reference``."""
    from trainables import registry

    swept = set(spec.methods)
    for i, name in enumerate(spec.reference):
        where = f"reference[{i}]"
        declared = registry.params(name, field=where)
        if name in swept:
            raise InputError(
                where, f"{name!r} is the sweep's own method; a reference is another method to read the ablation against"
            )
        if name in spec.reference[:i]:
            raise InputError(where, f"{name!r} is listed twice")
        try:
            declared().check_model(context_length)
        except InputError as error:
            raise InputError(
                where, f"{name!r} cannot run on this sweep's model at its defaults: {error.message}"
            ) from None
        for objective in spec.objectives:
            if objective.metric.startswith(_METHOD_SPECIFIC):
                raise InputError(
                    where,
                    f"{name!r} does not report the objective {objective.metric!r}, which only some "
                    "methods compute; select on val/acc to compare with references",
                )
    _check_report_delta(spec)
    if spec.reference and spec.scheduler.kind == "asha":
        raise InputError(
            "reference",
            "asha would stop reference trials early, and a reference row needs "
            "every seed's full run; use scheduler: fifo",
        )


def _check_report_delta(spec: SweepSpec) -> None:
    """``report.delta`` names a reference of the sweep, or values of its report rows."""
    delta = spec.report.delta or {}
    if REFERENCE in delta and len(delta) > 1:
        raise InputError("report.delta", "give either reference: NAME or row values, not both")
    for key, value in delta.items():
        where = f"report.delta.{key}"
        if key == REFERENCE:
            if value not in spec.reference:
                raise InputError(
                    where, f"{value!r} is not a reference of this sweep; reference: [{', '.join(spec.reference)}]"
                )
        elif key not in spec.report_rows:
            raise InputError(where, f"{key!r} is not a report row; rows: {', '.join(spec.report_rows) or 'none'}")
