"""The driver's run of a built Ray Tune sweep: the embedded Ray, Tune's loop with the live view,
and the close of the sweep's MLflow runs however the loop ends (finished, failed, stopped by a
signal, or an error). ``launch`` and ``resume`` build the tuner; this runs it.
"""

from __future__ import annotations

import atexit
import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from rich.console import Console
from rich.live import Live

from sweeper.run.live import LiveView, SweepProgress
from sweeper.run.scoring import UNSCORED_TAG, objective_values
from sweeper.run.space import point_of
from sweeper.run.stopping import StopSignals, SweepStopped, print_stopped
from sweeper.spec.references import REFERENCE
from sweeper.tracking.runs import SweepRun, finish_sweep


def ensure_ray(address: str | None = None) -> None:
    """Embedded Ray by default; with ``address`` (``auto`` or HOST:PORT) join that cluster, token auth on."""
    if address:
        from sweeper.run.cluster import connect

        connect(address)  # checks the address even when Ray is already up
        return
    import ray

    if ray.is_initialized():
        return
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    atexit.register(_release_at_exit)  # runs before Ray's own exit hook, registered when Ray was imported


def _release_at_exit() -> None:
    """Shut the embedded Ray down at exit, sooner than Ray's own exit hook, which first sleeps 0.5 s
    so that workers' logs reach the driver (there are none: ``log_to_driver=False``). Then freeze
    the heap: the interpreter's last collections over the objects of torch, MLflow and Ray would
    take another 1-2 s, and nothing is left to collect that exit does not free anyway."""
    import ray

    node = getattr(ray._private.worker, "_global_node", None)  # private: no public handle on the monitor
    if node is not None:
        # The autoscaler monitor reports to the GCS on SIGTERM; if Ray stops the GCS first it hangs
        # until Ray kills it a second later. Killing it first ends that wait (1.0 s of a 1.4 s shutdown).
        node.kill_monitor(check_alive=False)
    ray.shutdown()
    gc.freeze()


def fit(
    make_tuner: Callable[[list], Any],
    name: str,
    tracking: SweepRun,
    progress: SweepProgress,
    where: str,
    console: Console,
    stop: StopSignals,
    hint_storage: str | Path | None,
) -> int:
    """Run the tuner that ``make_tuner(callbacks)`` builds (a new one, or a restored one), then
    close the parent run and every child; returns 0 when all trials finished, 1 when any failed,
    128 + the signal's number when a signal stopped the sweep (its runs closed KILLED)."""
    # From here on the parent run exists: whatever happens, close it and every child.
    try:
        stop.check()
        ensure_ray()
        stop.take_back()
        stop.check()  # Ray's start-up takes seconds: a Ctrl-C meanwhile is acted on here
        # Drawn by rich's refresh thread, twice a second, whatever the rate of Tune's events.
        with Live(console=console, refresh_per_second=2, transient=False, get_renderable=progress.render) as live:
            results = make_tuner([LiveView(progress, live, console), stop.tune_callback()]).fit()
        stop.check()  # Tune ended its loop on the signal: its unfinished trials stay resumable
    except SweepStopped as stopped:
        finish_sweep(tracking, progress.statuses(), aborted=True, stopped_by=stopped.signal_name)
        if not console.is_terminal:
            console.line()
        print_stopped(name, stopped, str(hint_storage) if hint_storage else None, len(progress.done))
        return stopped.exit_code
    except BaseException:
        finish_sweep(tracking, progress.statuses(), aborted=True)
        raise
    # Ray's final view of every trial, including those a resumed sweep finished before this driver.
    statuses = {r.metrics["trial_id"]: "FAILED" if r.error else "FINISHED" for r in results if r.metrics}
    unscored = count_unscored(results, [metric for metric, _ in progress.objectives])
    MlflowClient(tracking.uri).set_tag(tracking.parent_run_id, UNSCORED_TAG, str(unscored))
    finish_sweep(tracking, {**statuses, **progress.statuses()})
    if not console.is_terminal:
        console.line()  # a non-terminal Live leaves its last frame without a newline
    failed = results.num_errors
    console.print(
        f"sweep {name}: {len(progress.done)} trials finished, {failed} failed"
        + (f", {unscored} unscored (an objective missing or NaN)" if unscored else "")
        + f"; storage {where}; MLflow {tracking.uri} (parent run {tracking.parent_run_id})"
    )
    return 1 if failed else 0


def count_unscored(results: Any, metrics: list[str]) -> int:
    """Trials of the sweep (not references) that ended without error but without a finite value of
    every objective: the searcher was told they failed, and no table can rank them."""
    return sum(
        1
        for r in results
        if not r.error and not point_of(r.config or {}).get(REFERENCE) and objective_values(r.metrics, metrics) is None
    )
