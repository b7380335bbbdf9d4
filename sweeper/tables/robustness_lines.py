"""The line a front's effective robustness is measured against, from one of three sources.

- the zero-shot line (the default): through chance ``(1/K, 1/K)`` and the zero-shot point, the
  line trials log ``robustness/effective`` against (``trainables.robustness.robustness_line``);
- a line fitted on logit-scaled accuracies over a family of models (``fit_logit_line``): the
  shipped zoo models evaluated zero-shot on the sweep's data (``sweeper.tables.zoo_points``), or a
  CSV of ``(ID, OOD)`` points the user gives (:func:`read_points_csv`).

The formulas live in :mod:`trainables.robustness`; this module only chooses and describes the line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from trainables.errors import InputError
from trainables.robustness import effective_robustness, fit_logit_line, logit_line_at, robustness_line

ID_NAMES = ("id", "id/acc", "id_acc")
OOD_NAMES = ("ood", "ood/avg_acc", "ood_acc")


@dataclass(frozen=True)
class Line:
    """Either the zero-shot line (``chance`` and ``zero_shot`` set) or a fitted logit line
    (``slope`` and ``intercept`` of ``logit(OOD) = slope * logit(ID) + intercept``)."""

    kind: str  # "zero-shot" or "fitted"
    source: str  # what it was drawn from, for the report
    chance: float = math.nan
    zero_shot: tuple[float, float] = (math.nan, math.nan)
    slope: float = math.nan
    intercept: float = math.nan
    points: tuple[tuple[float, float], ...] = ()

    def predict(self, id_acc: float) -> float:
        """The OOD accuracy the line predicts at ``id_acc``."""
        if self.kind == "fitted":
            return logit_line_at(id_acc, self.slope, self.intercept)
        return robustness_line(id_acc, self.zero_shot[0], self.zero_shot[1], self.chance)

    def effective(self, id_acc: float, ood_acc: float) -> float:
        """Effective robustness: ``ood_acc`` minus the line at ``id_acc`` (NaN when either is)."""
        if math.isnan(id_acc) or math.isnan(ood_acc):
            return math.nan
        if self.kind == "fitted":
            return ood_acc - logit_line_at(id_acc, self.slope, self.intercept)
        return effective_robustness(id_acc, ood_acc, self.zero_shot[0], self.zero_shot[1], self.chance)

    def describe(self) -> str:
        """One sentence for the report: what the line is and its parameters."""
        if self.kind == "fitted":
            return (
                f"line fitted on logit-scaled accuracies over {len(self.points)} points ({self.source}): "
                f"slope {self.slope:.4f}, intercept {self.intercept:.4f} "
                f"(logit(OOD) = {self.slope:.4f} * logit(ID) {'-' if self.intercept < 0 else '+'} "
                f"{abs(self.intercept):.4f})"
            )
        zs_id, zs_ood = self.zero_shot
        return (
            f"zero-shot line through chance ({self.chance:.4g}, {self.chance:.4g}) "
            f"and the zero-shot point ({zs_id:.4f}, {zs_ood:.4f})"
        )


def zero_shot_line(zs_id: float, zs_ood: float, chance: float) -> Line:
    return Line("zero-shot", "chance and zero-shot", chance=chance, zero_shot=(zs_id, zs_ood))


def fitted_line(points: list[tuple[float, float]], source: str, where: str = "--line") -> Line:
    """The logit line through ``points``; InputError naming ``where`` when it cannot be fitted."""
    try:
        slope, intercept = fit_logit_line(points)
    except ValueError as error:
        raise InputError(where, f"{source}: {error}") from None
    return Line("fitted", source, slope=slope, intercept=intercept, points=tuple(points))


def _number(text: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError("--line", f"{path}:{line}: {text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise InputError("--line", f"{path}:{line}: accuracy {value} is outside [0, 1] (give fractions, not %)")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_points_csv(path: Path) -> list[tuple[float, float]]:
    """``(ID, OOD)`` accuracies from a CSV: columns named ``id`` and ``ood`` (or ``id/acc`` and
    ``ood/avg_acc``) under a header row, other columns (a model name) ignored; or, without a
    header, the first two columns. Blank lines and ``#`` comments are skipped."""
    if not path.is_file():
        raise InputError("--line", f"no file {str(path)!r} (give 'zoo' or a CSV of ID,OOD accuracies)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [
            (k + 1, [cell.strip() for cell in row])
            for k, row in enumerate(csv.reader(handle))
            if row and any(row) and not row[0].lstrip().startswith("#")
        ]
    if not rows:
        raise InputError("--line", f"{path} holds no points")
    first = rows[0][1]
    columns = (0, 1)
    if not _is_number(first[0]):  # a header row: find the two columns by name
        names = [cell.lower() for cell in first]
        found = [next((names.index(n) for n in wanted if n in names), None) for wanted in (ID_NAMES, OOD_NAMES)]
        if found[0] is None or found[1] is None:
            raise InputError("--line", f"{path}: the header needs columns 'id' and 'ood', found {', '.join(first)}")
        columns, rows = (found[0], found[1]), rows[1:]
    points = []
    for line, cells in rows:
        if len(cells) <= max(columns):
            raise InputError("--line", f"{path}:{line}: expected an ID and an OOD accuracy, got {','.join(cells)!r}")
        points.append((_number(cells[columns[0]], path, line), _number(cells[columns[1]], path, line)))
    return points
