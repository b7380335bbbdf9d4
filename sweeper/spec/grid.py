"""A grid sweep's points: every combination of its grid and choice dims, conditions honoured."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper.spec.references import reference_trials
from trainables.errors import InputError

if TYPE_CHECKING:
    from sweeper.spec.schema import SweepSpec
    from sweeper.spec.sections import SearchDim


def _condition_holds(dim: SearchDim, point: dict[str, Any], fixed: dict[str, Any]) -> bool:
    if not dim.when:
        return True
    known = {**fixed, **point}
    return all(key in known and known[key] == value for key, value in dim.when.items())


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the grid / choice dims in file order (first key slowest).

    A dim with ``when`` appears only in the combinations where its condition holds. Without search
    dims there is one empty point.
    """
    points: list[dict[str, Any]] = [{}]
    for key, dim in spec.search.items():
        if dim.kind not in ("grid", "choice"):
            raise InputError(f"search.{key}", f"a {dim.kind} range cannot be enumerated; use grid or choice")
        grown: list[dict[str, Any]] = []
        for point in points:
            if _condition_holds(dim, point, spec.fixed):
                grown.extend({**point, key: value} for value in dim.values)
            else:
                grown.append(point)
        points = grown
    return points


def trial_count(spec: SweepSpec) -> int:
    """Trials the sweep runs: configurations times seeds, plus the references' (one per seed each)."""
    configs = len(grid_points(spec)) if spec.searcher == "grid" else spec.num_samples
    return configs * len(spec.seeds) + reference_trials(spec)
