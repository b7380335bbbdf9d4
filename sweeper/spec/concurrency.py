"""How many trials may log at once, and the warning when that is more than one sqlite store holds.

A warning, not an error: the sweep still runs (its writes retry while the store is locked, see
:mod:`sweeper.tracking.locked`), but past the measured count nobody knows whether the retries
still lose nothing. The count and its measurement: BENCHMARKS.md, "Many trials logging at once".
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sweeper.spec.grid import trial_count
from sweeper.tracking.uri import redact_uri, resolve_uri

if TYPE_CHECKING:
    from sweeper.spec.schema import SweepSpec

# The most trials measured logging at once to one sqlite store, with the retries, with no error
# and no value lost (bench/bench_many_writers.py; once on an idle machine, once under a load of
# ~15 on 2 cores, where 44 writes were retried and the same 32 writers without retries lost 100
# values). More were not measured; CI tests 16 (tests/e2e/test_many_writers.py).
SQLITE_WRITERS = 32


def concurrent_trials(spec: SweepSpec, cpus: int | None = None) -> int:
    """The most trials the sweep runs at once on this machine: ``max_concurrent`` if set, else as
    many as its CPUs hold at ``resources.cpu`` each (as the embedded Ray schedules them), and never
    more than the sweep's trials. GPUs are not counted: they can only lower the figure."""
    cap = spec.max_concurrent
    if cap is None:
        cap = max(1, int((cpus or os.cpu_count() or 1) // spec.resources.cpu))
    return min(cap, trial_count(spec))


def sqlite_writers_warning(spec: SweepSpec, cpus: int | None = None) -> str | None:
    """One line naming ``max_concurrent`` when more trials may log at once to a sqlite tracking
    store than :data:`SQLITE_WRITERS`; None otherwise (a server URI, or few enough trials)."""
    uri = resolve_uri(spec.tracking.uri)
    if not uri.startswith("sqlite:"):
        return None
    writers = concurrent_trials(spec, cpus)
    if writers <= SQLITE_WRITERS:
        return None
    why = (
        f"{spec.max_concurrent}"
        if spec.max_concurrent is not None
        else f"unset, so up to {writers} trials at once on {cpus or os.cpu_count()} CPUs"
    )
    return (
        f"max_concurrent: {why}; more than {SQLITE_WRITERS} trials logging at once to the sqlite store "
        f"{redact_uri(uri)} were never measured and may lose metrics to its lock; set max_concurrent: "
        f"{SQLITE_WRITERS} or lower, or track on an MLflow server (tracking.uri: http://host:5000)"
    )
