"""What a continual trial measures after each session, and the formulas behind each name.

Before the first session the zero-shot model is evaluated on every session's test data and on the
retention tasks. After session k (1-based) the trial logs:

- ``session/<k>/acc/<j>``, j <= k: accuracy on session j's test data (the accuracy matrix a_{k,j});
- ``session/<k>/target_acc``: a_{k,k}, and ``session/<k>/target_gain``: a_{k,k} minus the zero-shot
  accuracy on the same data (LoRSU's target improvement, TI);
- ``session/<k>/seen_acc``: the mean of a_{k,j} over j <= k (average accuracy, ACC);
- ``session/<k>/forgetting`` (k >= 2): the mean over j < k of max_{l in [j, k-1]} a_{l,j} - a_{k,j},
  the average forgetting of Chaudhry et al. (ECCV 2018): how far each earlier session's accuracy
  fell below the best it had;
- ``session/<k>/retention_change``: the mean over the retention tasks of zs/<task>/acc minus its
  zero-shot value (LoRSU's control change, CC), and ``session/<k>/zs/<task>/acc`` itself;
- ``session/<k>/id/acc``, ``session/<k>/ood/avg_acc`` and ``session/<k>/val/acc`` as the trial's
  usual metrics are after that session.

After the last session: ``continual/avg_acc`` (the last ``seen_acc``), ``continual/forgetting`` (the
last ``forgetting``), ``continual/target_gain`` (the mean of every session's ``target_gain``),
``continual/retention_change`` (the last one) and ``continual/sessions``.
"""

from __future__ import annotations

import math
from typing import Any

CARRIED = ("id/acc", "ood/avg_acc", "val/acc", "oodval/avg_acc")


class ContinualRecord:
    """Zero-shot accuracies and the accuracy matrix so far; its state travels in checkpoints."""

    def __init__(self) -> None:
        self.zero_shot: dict[str, float] = {}  # session index (str) or zs/<task>/acc -> accuracy
        self.matrix: list[list[float]] = []  # matrix[k][j]: accuracy on session j after session k

    def set_zero_shot(self, session_accs: list[float], retention: dict[str, float]) -> None:
        self.zero_shot = {**{str(j): acc for j, acc in enumerate(session_accs)}, **retention}

    def after_session(self, accs: list[float], metrics: dict[str, float]) -> dict[str, float]:
        """Record session k's row (its accuracies on sessions 0..k) and return its ``session/<k>/``
        metrics (k 1-based in the names); ``metrics`` are the trial's usual ones after it."""
        self.matrix.append(list(accs))
        k = len(self.matrix) - 1
        prefix = f"session/{k + 1}/"
        out = {f"{prefix}acc/{j + 1}": acc for j, acc in enumerate(accs)}
        out[f"{prefix}target_acc"] = accs[k]
        out[f"{prefix}target_gain"] = accs[k] - self.zero_shot[str(k)]
        out[f"{prefix}seen_acc"] = sum(accs) / len(accs)
        if k > 0:
            out[f"{prefix}forgetting"] = self.forgetting(k)
        retention = {name: value for name, value in metrics.items() if name.startswith("zs/")}
        changes = [value - self.zero_shot[name] for name, value in retention.items() if name in self.zero_shot]
        if changes:
            out[f"{prefix}retention_change"] = sum(changes) / len(changes)
        out.update({f"{prefix}{name}": value for name, value in retention.items()})
        out.update({f"{prefix}{name}": metrics[name] for name in CARRIED if name in metrics})
        return out

    def forgetting(self, k: int) -> float:
        """Average forgetting after session k (0-based) over the sessions before it."""
        drops = [max(self.matrix[after][j] for after in range(j, k)) - self.matrix[k][j] for j in range(k)]
        return sum(drops) / len(drops) if drops else math.nan

    def summary(self, session_metrics: dict[str, float]) -> dict[str, float]:
        """``continual/*`` after the last session, from the last session's metrics."""
        last = len(self.matrix)
        gains = [row[k] - self.zero_shot[str(k)] for k, row in enumerate(self.matrix)]
        out = {
            "continual/avg_acc": session_metrics[f"session/{last}/seen_acc"],
            "continual/target_gain": sum(gains) / len(gains),
            "continual/sessions": float(last),
        }
        if last > 1:
            out["continual/forgetting"] = session_metrics[f"session/{last}/forgetting"]
        change = session_metrics.get(f"session/{last}/retention_change")
        if change is not None:
            out["continual/retention_change"] = change
        return out

    def state(self) -> dict[str, Any]:
        return {"zero_shot": dict(self.zero_shot), "matrix": [list(row) for row in self.matrix]}

    def load(self, state: dict[str, Any]) -> None:
        self.zero_shot, self.matrix = dict(state["zero_shot"]), [list(row) for row in state["matrix"]]
