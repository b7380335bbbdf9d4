"""The live terminal view of a sweep: trials pending, running, done and failed, the best so far,
elapsed time and ETA. A Ray Tune callback feeds it from the driver process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sweeper.run.space import point_of
from sweeper.spec.references import REFERENCE


@dataclass
class SweepProgress:
    total: int
    metric: str
    mode: str
    started: float = field(default_factory=time.monotonic)
    running: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    best_value: float | None = None
    best_config: dict[str, Any] = field(default_factory=dict)

    def better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def statuses(self) -> dict[str, str]:
        """MLflow end status of each trial Ray has finished with."""
        return {t: "FINISHED" for t in self.done} | {t: "FAILED" for t in self.failed}

    def eta_seconds(self) -> float | None:
        finished = len(self.done) + len(self.failed)
        if not finished:
            return None
        elapsed = time.monotonic() - self.started
        # Running trials count as half done: a rough but steadier estimate early on.
        progress = finished + 0.5 * len(self.running)
        return elapsed / progress * (self.total - progress)

    def render(self) -> Group:
        elapsed = time.monotonic() - self.started
        eta = self.eta_seconds()
        pending = max(0, self.total - len(self.running) - len(self.done) - len(self.failed))
        table = Table.grid(padding=(0, 2))
        for _ in range(6):
            table.add_column(justify="right")
        table.add_row("pending", "running", "done", "failed", "elapsed", "ETA")
        table.add_row(
            str(pending),
            str(len(self.running)),
            f"[green]{len(self.done)}",
            f"[red]{len(self.failed)}",
            f"{elapsed:.0f}s",
            "-" if eta is None else f"{eta:.0f}s",
        )
        best = (
            "best: -"
            if self.best_value is None
            else (f"best {self.metric} = {self.best_value:.4f} at {self.best_config}")
        )
        return Group(table, Text(best))


class LiveView(Callback):
    """Keeps a :class:`SweepProgress` up to date and redraws it."""

    def __init__(self, progress: SweepProgress, live: Live | None, console: Console) -> None:
        self.progress, self.live, self.console = progress, live, console

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; the terminal stays behind.
        return {"progress": self.progress, "live": None, "console": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.console = Console()

    def _redraw(self) -> None:
        if self.live is not None:
            self.live.update(self.progress.render())

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress.running.add(trial.trial_id)
        self._redraw()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        value = result.get(self.progress.metric)
        reference = point_of(dict(trial.config)).get(REFERENCE)  # the best is the sweep's, not a reference's
        if isinstance(value, (int, float)) and not reference and self.progress.better(float(value)):
            self.progress.best_value = float(value)
            self.progress.best_config = point_of(dict(trial.config))
        self._redraw()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress.running.discard(trial.trial_id)
        self.progress.done.add(trial.trial_id)
        if self.live is None or not self.console.is_terminal:
            self.console.print(f"trial {trial.trial_id} done {point_of(dict(trial.config))}")
        self._redraw()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress.running.discard(trial.trial_id)
        self.progress.failed.add(trial.trial_id)
        self.console.print(f"[red]trial {trial.trial_id} failed[/red] {point_of(dict(trial.config))}")
        self._redraw()
