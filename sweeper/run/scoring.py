"""When a trial counts as scored: it ended with a finite value of every objective.

One definition for the searcher (``sweeper.run.repeater``), the live view, the count a sweep ends
with and ``sweeper status``; importable without Ray or MLflow, as ``sweeper status`` needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Parent-run tag: how many trials of the sweep ended unscored (set when the driver ends).
UNSCORED_TAG = "sweeper.unscored_trials"


def objective_values(result: Mapping[str, Any] | None, metrics: Sequence[str]) -> list[float] | None:
    """The finite value of every objective in ``result``, or None when one is missing or not finite."""
    if not result:
        return None
    values = []
    for metric in metrics:
        value = result.get(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        values.append(float(value))
    return values
