"""Best-epoch selection on validation data: which epoch's metrics a trial reports.

Each epoch is evaluated on the ID validation split (``val/*``) and on any held-out OOD validation
domains (``oodval/*``); a trial reports the metrics of the epoch that is best on its selection
metric (the sweep's objective when that is a validation metric, else ``val/acc``), as DomainBed's
training-domain and leave-one-domain-out validation do. Only fully evaluated epochs compete
(with ``eval_every`` > 1, the epochs between evaluations lack the OOD metrics), and the earliest
of equal epochs wins. The summary holds:

- every per-epoch metric under its own name, from the selected epoch;
- ``last/<metric>``: the same metric at the last epoch;
- ``best_epoch``: the selected epoch (0-based, the MLflow step it was logged at);
- end-of-training metrics (``wise/*``, ``compat/*``, ``lp/*``, ``params/*``) as they are: they are
  computed once, on the weights after the last epoch.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

DEFAULT_SELECTION_METRIC = "val/acc"
# Metrics measured on validation data only; robustness/effective_val is effective robustness on
# the held-out OOD validation domains, measured with val/acc against the zero-shot line.
VALIDATION_PREFIXES = ("val/", "oodval/", "robustness/effective_val")


class Selection(BaseModel):
    """The metric a trial selects its epoch on, and which way is better."""

    model_config = ConfigDict(extra="forbid")
    metric: str = DEFAULT_SELECTION_METRIC
    mode: str = "max"


def selection_for(objective: str | None, mode: str = "max") -> Selection:
    """Select on the objective when it is a validation metric, else on ``val/acc`` (max)."""
    if objective is not None and objective.startswith(VALIDATION_PREFIXES):
        return Selection(metric=objective, mode=mode)
    return Selection()


class BestEpoch:
    """Keeps the best fully evaluated epoch seen so far; its state travels in checkpoints."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.epoch = -1
        self.value = math.nan
        self.metrics: dict[str, float] = {}

    def offer(self, epoch: int, metrics: dict[str, float], complete: bool) -> None:
        """Consider one epoch's metrics; ``complete`` is False for an ID-only evaluation."""
        if not complete:
            return
        value = float(metrics.get(self.selection.metric, math.nan))
        if self.epoch < 0 or self._better(value, self.value):
            self.epoch, self.value, self.metrics = epoch, value, dict(metrics)

    def _better(self, value: float, than: float) -> bool:
        if math.isnan(value):
            return False
        if math.isnan(than):
            return True
        return value > than if self.selection.mode == "max" else value < than

    def summary(self, last: dict[str, float], final: dict[str, float]) -> dict[str, float]:
        """The trial's reported metrics: the selected epoch's, ``last/*``, ``best_epoch``, and the
        end-of-training ``final`` metrics."""
        chosen = self.metrics or last
        return {
            **chosen,
            **{f"last/{name}": value for name, value in last.items()},
            **final,
            "best_epoch": float(self.epoch if self.metrics else 0),
        }

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "value": self.value, "metrics": dict(self.metrics)}

    def load(self, state: dict[str, Any]) -> None:
        self.epoch, self.value, self.metrics = state["epoch"], state["value"], dict(state["metrics"])
