"""Verdicts on the papers' qualitative findings, computed from sweep frames (``sweeper.tracking.results.load``).

Each ``finding_*`` function takes the frames of its ``search_spaces/paper-*.yaml`` sweeps and returns
a :class:`Finding`: one :class:`Claim` per testable sentence of the finding, each with its effect
(a difference of means over seeds, signed so that positive supports the claim), the seed standard
deviation it is measured against, and a verdict by one rule for all:

- a directional claim *holds* when effect > 2 x seed std, *does not hold* when effect < -2 x seed
  std, and is *inconclusive* in between (the difference is within seed noise);
- an insensitivity claim ("insensitive to L") *holds* when the spread of the means over the range
  is at most max(2 x seed std, 1 point), and *does not hold* otherwise;
- a bound ("at most 10% of the image tower") holds or does not, as measured.

The seed std of a difference is the pooled std of its two sides, sqrt((s_a^2 + s_b^2) / 2).
A finding holds when all its claims hold, does not hold when any claim does not, and is
inconclusive otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from trainables.robustness import robustness_line as zero_shot_line

HOLDS, FAILS, UNSURE = "holds", "does not hold", "inconclusive"
# "Comparable ID" and "within a few points" (findings 2-4), in accuracy units.
Frames = Mapping[str, pd.DataFrame]  # sweep name -> its trials (sweeper.tracking.results.load)
ID_TOLERANCE = 0.03
# The smallest spread that counts as a sensitivity, whatever the seed noise.
FLAT_SPREAD = 0.01
CHANCE = 0.1  # ten shape classes
_WISE_VAL = re.compile(r"^wise/([0-9.]+)/val/acc$")


@dataclass(frozen=True)
class Claim:
    """One testable sentence, its measured effect (positive supports it) and its verdict."""

    text: str
    effect: float
    seed_std: float
    verdict: str
    detail: str = ""

    @property
    def ratio(self) -> float:
        """Effect in units of the seed std (inf when the seeds agree exactly)."""
        return self.effect / self.seed_std if self.seed_std > 0 else math.copysign(math.inf, self.effect or 1.0)


@dataclass
class Finding:
    """A paper finding, its claims, and the tables it rests on (markdown, from the report module)."""

    number: int
    title: str
    claims: list[Claim]
    sweeps: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        verdicts = {c.verdict for c in self.claims}
        return FAILS if FAILS in verdicts else HOLDS if verdicts == {HOLDS} else UNSURE


def pooled_std(*stds: float) -> float:
    """sqrt(mean of variances); NaN stds (a single seed) count as 0."""
    values = [0.0 if pd.isna(s) else float(s) for s in stds]
    return math.sqrt(sum(v * v for v in values) / len(values))


def directional(text: str, a: pd.Series, b: pd.Series, detail: str = "") -> Claim:
    """Claim ``mean(a) > mean(b)``; a and b hold one value per seed."""
    effect = float(a.mean() - b.mean())
    std = pooled_std(a.std(), b.std())
    verdict = HOLDS if effect > 2 * std else FAILS if effect < -2 * std else UNSURE
    return Claim(text, effect, std, verdict, detail)


def insensitive(text: str, frame: pd.DataFrame, by: str, metric: str) -> Claim:
    """Claim that ``metric`` barely moves with ``by``: spread of the per-value means vs seed noise."""
    stats = frame.groupby(by)[metric].agg(["mean", "std"])
    spread = float(stats["mean"].max() - stats["mean"].min())
    std = pooled_std(*stats["std"])
    limit = max(2 * std, FLAT_SPREAD)
    means = ", ".join(f"{by}={k}: {v:.3f}" for k, v in stats["mean"].items())
    # effect is the margin left under the limit, so that positive supports the claim
    return Claim(
        text,
        limit - spread,
        std,
        HOLDS if spread <= limit else FAILS,
        f"spread {spread:.3f} vs limit {limit:.3f} ({means})",
    )


def bound(text: str, value: float, limit: float, detail: str = "") -> Claim:
    """Claim ``value <= limit``, measured without seed noise."""
    return Claim(text, limit - value, 0.0, HOLDS if value <= limit else FAILS, detail or f"{value:.3f} vs {limit:.3f}")


def finished(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the trials that finished: a failed trial's last metrics are not a result."""
    return frame[frame["status"] == "FINISHED"] if "status" in frame.columns else frame


def per_seed(frame: pd.DataFrame, metric: str, **where: object) -> pd.Series:
    """``metric`` of the trials matching ``where`` (e.g. method="ft"), indexed by seed."""
    rows = finished(frame)
    for key, value in where.items():
        rows = rows[rows[key].astype(str) == str(value)]
    if rows.empty:
        raise ValueError(f"no finished trial with {where} in sweep {frame.attrs.get('sweep')!r}")
    return rows.groupby("seed")[metric].mean()


def zs_tasks(frame: pd.DataFrame) -> list[str]:
    return sorted(c for c in frame.columns if re.fullmatch(r"zs/[^/]+/acc", c))


def ood_domains(frame: pd.DataFrame) -> list[str]:
    return sorted(c for c in frame.columns if re.fullmatch(r"ood/(?!avg_)[^/]+/acc", c))


def forgetting(frame: pd.DataFrame, method: str, columns: list[str]) -> pd.Series:
    """Per seed: the mean drop of ``columns`` from the zero-shot model (the ``zeroshot`` trials)."""
    reference = {c: per_seed(frame, c, method="zeroshot").mean() for c in columns}
    drops = [reference[c] - per_seed(frame, c, method=method) for c in columns]
    return sum(drops) / len(drops)


def robustness_line(id_acc: float, zs_id: float, zs_ood: float) -> float:
    """Zero-shot's effective-robustness line (``trainables.robustness``, the one trials log
    ``robustness/effective`` against): OOD at ``id_acc``, for the ten shape classes."""
    return zero_shot_line(id_acc, zs_id, zs_ood, CHANCE)


def wise_alpha(row: pd.Series) -> str:
    """WiSE-FT's alpha as the paper chooses it: the one with the best ID validation accuracy
    (``wise/<alpha>/val/acc``), as it is spelled in the columns; the larger alpha of a tie."""
    spelled = {float(m.group(1)): m.group(1) for c in row.index if (m := _WISE_VAL.match(c))}  # 1.0 -> "1.0"
    if not spelled:
        raise KeyError("no wise/<alpha>/val/acc column: the sweep predates validation selection")
    return max(spelled.items(), key=lambda item: (row[f"wise/{item[1]}/val/acc"], item[0]))[1]


def wise_gain(row: pd.Series) -> float:
    """OOD accuracy of WiSE-FT at the alpha chosen on ID validation, minus FT's (alpha = 1): > 0
    where weight interpolation, selected without looking at OOD data, beats FT on OOD."""
    spelled = {float(m.group(1)): m.group(1) for c in row.index if (m := _WISE_VAL.match(c))}
    return float(row[f"wise/{wise_alpha(row)}/ood/avg_acc"] - row[f"wise/{spelled[1.0]}/ood/avg_acc"])
