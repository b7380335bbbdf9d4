"""The live terminal view of a sweep: trials pending, running, done and failed, the best so far,
elapsed time and ETA. A Ray Tune callback feeds it from the driver process.

A multi-objective sweep has no single best: the view shows the size of the Pareto front of the
finished trials and the best value of each objective. Optuna reports no intermediate values with
several objectives, so the view reads each finished trial's last result itself, once per trial.

The view costs the same at any trial count: it shows counts, never a row per trial; Tune's events
only update them (the front and the bests as each trial arrives); and the terminal is redrawn by
rich's own refresh, twice a second, not once per event (``sweeper.run.driving.fit``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sweeper.run.scoring import objective_values
from sweeper.run.space import point_of
from sweeper.spec.references import REFERENCE
from sweeper.tables.pareto import RunningFront


def failure_reason(trial: Any) -> str:
    """The last line of the error that ended ``trial``: ``Kind: message`` of the exception the trial
    raised (Ray's report and a DataLoader worker's both end with it), or '' when there is none.
    Read from the error file Tune writes on the driver before it calls ``on_trial_error``."""
    path = getattr(trial, "error_file", None)
    try:
        text = Path(path).read_text(errors="replace") if path else ""
    except OSError:  # a courtesy to the reader, never a reason to stop the driver
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


@dataclass
class SweepProgress:
    total: int
    objectives: list[tuple[str, str]]  # (metric, mode): the first one, or several for a Pareto front
    started: float = field(default_factory=time.monotonic)
    running: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    best_value: float | None = None
    best_config: dict[str, Any] = field(default_factory=dict)
    # Finished trials of the sweep's own (not references): scored (every objective's value) or not.
    scored: int = 0
    unscored: set[str] = field(default_factory=set)
    bests: list[float | None] = field(init=False)
    front: RunningFront = field(init=False)

    def __post_init__(self) -> None:
        self.bests = [None] * len(self.objectives)
        self.front = RunningFront([mode for _, mode in self.objectives])

    @property
    def front_size(self) -> int:
        return len(self.front)

    @property
    def metric(self) -> str:
        return self.objectives[0][0]

    @property
    def mode(self) -> str:
        return self.objectives[0][1]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def finish(self, trial_id: str, last_result: dict[str, Any] | None) -> None:
        """Score a finished trial from its last result: the bests and the front take it in as it
        comes (one pass over the front, see ``RunningFront``)."""
        values = objective_values(last_result, [metric for metric, _ in self.objectives])
        if values is None:
            self.unscored.add(trial_id)
            return
        self.scored += 1
        self.bests = [
            value if best is None else (max if mode == "max" else min)(best, value)
            for value, best, (_, mode) in zip(values, self.bests, self.objectives, strict=True)
        ]
        if self.multi_objective:
            self.front.add(values)

    def best_of_each(self) -> list[float | None]:
        """The best value of each objective over the scored trials."""
        return list(self.bests)

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
        lines = [Text(self.front_line() if self.multi_objective else self.best_line())]
        if self.unscored:
            lines.append(Text(self.unscored_line(), style="yellow"))
        return Group(table, *lines)

    def best_line(self) -> str:
        if self.best_value is None:
            return "best: -"
        return f"best {self.metric} = {self.best_value:.4f} at {self.best_config}"

    def front_line(self) -> str:
        """``front: 3 of 5 scored trials; best val/acc (max) 0.8123, val/nll (min) 0.4120``"""
        best = ", ".join(
            f"{metric} ({mode}) {'-' if value is None else f'{value:.4f}'}"
            for (metric, mode), value in zip(self.objectives, self.best_of_each(), strict=True)
        )
        return f"front: {self.front_size} of {self.scored} scored trials; best {best}"

    def unscored_line(self) -> str:
        return f"{len(self.unscored)} unscored: finished without a finite value of every objective"


class LiveView(Callback):
    """Keeps a :class:`SweepProgress` up to date; ``live`` draws it (and a console that is not a
    terminal gets a line per trial instead)."""

    def __init__(self, progress: SweepProgress, live: Live | None, console: Console) -> None:
        self.progress, self.live, self.console = progress, live, console

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; the terminal stays behind.
        return {"progress": self.progress, "live": None, "console": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.console = Console()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress.running.add(trial.trial_id)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        value = result.get(self.progress.metric)
        reference = point_of(dict(trial.config)).get(REFERENCE)  # the best is the sweep's, not a reference's
        if isinstance(value, (int, float)) and not reference and self.progress.better(float(value)):
            self.progress.best_value = float(value)
            self.progress.best_config = point_of(dict(trial.config))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress.running.discard(trial.trial_id)
        self.progress.done.add(trial.trial_id)
        if not point_of(dict(trial.config)).get(REFERENCE):
            self.progress.finish(trial.trial_id, trial.last_result)
        if self.live is None or not self.console.is_terminal:
            self.console.print(f"trial {trial.trial_id} done {point_of(dict(trial.config))}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.progress.running.discard(trial.trial_id)
        self.progress.failed.add(trial.trial_id)
        reason = failure_reason(trial)
        self.console.print(
            f"[red]trial {trial.trial_id} failed[/red] {point_of(dict(trial.config))}"
            + (f": {escape(reason)}" if reason else "")
        )
