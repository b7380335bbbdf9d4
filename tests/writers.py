"""Many trials logging at once: N writer processes, each a real ``TrialRun`` under one parent run.

Shared by tests/e2e/test_many_writers.py and bench/bench_many_writers.py. Each writer is a separate
OS process (multiprocessing, spawn), as Ray's trial workers are: it creates its child run through
``TrialRun.__enter__``, logs ``steps`` epochs of ``metrics`` values through ``TrialRun.log`` and
closes the run. The writers wait at a barrier once their imports are done, so that they write at
the same time rather than one after the other. Every error a writer meets is recorded, and the
store is then read back to count each (run, key, step) that reached it.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from sweeper.tracking.runs import SweepRun, TrialRun, child_runs, start_sweep


def metric_names(count: int) -> list[str]:
    return [f"writer/m{k}" for k in range(count)]


def describe(error: BaseException) -> str:
    """One line per error; sqlite's lock error is named as such (SQLAlchemy wraps it in a long text)."""
    text = " ".join(str(error).split())
    for known in ("database is locked", "database table is locked"):
        if known in text:
            return f"{type(error).__name__}: {known}"
    return f"{type(error).__name__}: {text[:300]}"


def _writer(sweep: SweepRun, index: int, steps: int, metrics: int, barrier: Any, out: Any) -> None:
    """One simulated trial; puts (index, errors, first write time, last write time) on ``out``."""
    errors: list[str] = []
    barrier.wait()
    start = time.time()
    try:
        with TrialRun(sweep, f"writer_{index:03d}", f"writer_{index:03d}", {"index": index}, {}) as trial:
            for step in range(steps):
                values = {name: float(index * 1000 + step + k / 100) for k, name in enumerate(metric_names(metrics))}
                try:
                    trial.log(values, step)
                except Exception as exc:  # noqa: BLE001 - counted, not hidden: the point of the run
                    errors.append(describe(exc))
    except Exception as exc:  # noqa: BLE001 - a failed create or close is a failure too
        errors.append(describe(exc))
    out.put((index, errors, start, time.time()))


@dataclass
class WritersResult:
    """What N writers did to one store."""

    writers: int
    steps: int
    metrics: int
    wall_s: float  # first writer's start to last writer's end (imports excluded)
    errors: list[str] = field(default_factory=list)
    runs: int = 0  # child runs found in the store
    finished: int = 0  # of which FINISHED
    logged: int = 0  # distinct (run, key, step) found in the store
    duplicates: int = 0  # points stored twice for one (run, key, step)
    wrong_values: int = 0  # points whose value is not the one written

    @property
    def expected(self) -> int:
        return self.writers * self.steps * self.metrics

    @property
    def lost(self) -> int:
        return self.expected - self.logged

    @property
    def values_per_s(self) -> float:
        return self.logged / self.wall_s if self.wall_s > 0 else 0.0


def run_writers(uri: str, name: str, writers: int, steps: int, metrics: int, timeout_s: float = 600) -> WritersResult:
    """Start a sweep's parent run on ``uri`` (as the driver does), run ``writers`` writer processes
    against it at once, then count what the store holds."""
    sweep = start_sweep(name, None, uri, {})
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(writers), context.Queue()
    processes = [
        context.Process(target=_writer, args=(sweep, i, steps, metrics, barrier, out), daemon=True)
        for i in range(writers)
    ]
    for process in processes:
        process.start()
    try:
        reports = _collect(processes, out, time.monotonic() + timeout_s)
    except BaseException:
        for process in processes:  # the others may be waiting at the barrier for a dead one
            process.kill()
        raise
    finally:
        for process in processes:
            process.join(timeout=30)
    errors = [error for _, found, _, _ in reports for error in found]
    wall = max(end for *_, end in reports) - min(start for *_, start, _ in reports)
    result = WritersResult(writers, steps, metrics, wall, errors)
    count_logged(sweep, result)
    return result


def _collect(processes: list[Any], out: Any, deadline: float) -> list[tuple[int, list[str], float, float]]:
    """Every writer's report; a writer that died without one (it never reached its runs) is a
    failure of the run, not a silent gap."""
    reports: list[tuple[int, list[str], float, float]] = []
    while len(reports) < len(processes):
        try:
            reports.append(out.get(timeout=5))
        except queue.Empty:
            reported = {index for index, *_ in reports}
            dead = {i: p.exitcode for i, p in enumerate(processes) if p.exitcode not in (None, 0)}
            if set(dead) - reported:
                raise AssertionError(f"writers exited without a report (index: exit code): {dead}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(processes) - len(reports)} writers still running at the deadline") from None
    return reports


def count_logged(sweep: SweepRun, result: WritersResult) -> None:
    """Read every writer's run back: each (key, step) present once, with the value written."""
    from mlflow.tracking import MlflowClient  # after Sweeper's import, which sets MLflow's environment

    client = MlflowClient(sweep.uri)
    runs = child_runs(sweep)
    result.runs = len(runs)
    result.finished = sum(run.info.status == "FINISHED" for run in runs)
    for run in runs:
        index = int(run.info.run_name.removeprefix("writer_"))  # its params may be what was lost
        for k, name in enumerate(metric_names(result.metrics)):
            history = client.get_metric_history(run.info.run_id, name)
            points = {m.step: m.value for m in history}
            result.logged += len(points)
            result.duplicates += len(history) - len(points)
            result.wrong_values += sum(value != float(index * 1000 + step + k / 100) for step, value in points.items())
