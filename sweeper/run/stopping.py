"""Ctrl-C and SIGTERM for a sweep's driver: the first signal stops the sweep cleanly, a second one
exits at once.

The first SIGINT or SIGTERM is only recorded: a handler that raised wherever the signal landed
(halfway through creating the parent run, inside Ray's start-up) could leave an MLflow run RUNNING.
The driver acts on it at its next check point. Inside Ray Tune's loop, a Tune callback passes it on
to Tune's own interrupt (the handler Tune installs for SIGUSR1 while its loop runs). That ends the
loop, saves the experiment state with the unfinished trials still unfinished, so that ``sweeper
resume`` runs them again, and stops the trial actors. Their runs are then closed KILLED with a
``sweeper.stopped_by`` tag, the driver's lease is released, and a resume hint is printed.

A second signal means "now": the driver exits at once without closing anything. Its lease then
goes stale as a SIGKILLed driver's would, and ``sweeper resume`` takes it over.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from ray.tune import Callback

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SweepStopped(Exception):
    """Raised at a check point after the driver received a stop signal."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"stopped by {signal_name}")
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + int(signal.Signals[self.signal_name])


class StopSignals:
    """Catch SIGINT and SIGTERM while a sweep runs (a context manager; main thread only).

    ``check()`` raises :class:`SweepStopped` once a signal arrived; ``tune_callback()`` hands the
    stop to Ray Tune while its loop runs."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}
        self._tune_disabled_before: str | None = None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set there; a driver always runs there
        for number in SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        # Tune would take SIGINT for itself and restore ours only after its first one.
        self._tune_disabled_before = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()
        if self._tune_disabled_before is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self._tune_disabled_before

    def take_back(self) -> None:
        """Install the handlers again: Ray's core worker, started by ``ray.init`` in this process,
        replaces the SIGTERM handler at the C level (with one that logs a stack and exits), which
        Python's ``signal.getsignal`` does not show."""
        for number in self._previous:
            signal.signal(number, self._handle)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.received is not None:
            # os.write: print() here could re-enter a print the signal interrupted.
            os.write(2, f"sweeper: second signal ({name}): exiting now, nothing closed\n".encode())
            _kill_embedded_ray()
            os._exit(128 + number)
        self.received = name
        os.write(
            2,
            f"sweeper: {name} received: stopping the trials and closing their runs "
            "(send it again to exit at once)\n".encode(),
        )

    def check(self) -> None:
        """Raise :class:`SweepStopped` if a stop signal has arrived."""
        if self.received is not None:
            raise SweepStopped(self.received)

    def tune_callback(self) -> PassStopToTune:
        """A Ray Tune callback that passes a received stop on to Tune's own interrupt."""
        return PassStopToTune(self)


class PassStopToTune(Callback):
    """Hands a stop that :class:`StopSignals` received to Ray Tune, from inside Tune's loop."""

    def __init__(self, signals: StopSignals | None) -> None:
        self.signals, self.forwarded = signals, False

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment; the handlers stay with this driver.
        return {"signals": None, "forwarded": False}

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.signals is None or self.signals.received is None or self.forwarded:
            return
        self.forwarded = True
        # Tune's loop handler (tune.py, _setup_signal_catching): ends the loop, saves the experiment
        # with its unfinished trials unfinished, and stops the trial actors.
        handler = signal.getsignal(signal.SIGUSR1)
        if callable(handler):
            handler(signal.SIGUSR1, None)


def _kill_embedded_ray() -> None:
    """SIGKILL every process this driver started, its embedded Ray's GCS, raylet, agents and
    workers included: SIGKILLed raylets orphan their agents, which then outlive the driver by
    minutes. A driver connected to a cluster has no Ray process among its descendants."""
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def descendants(root: int) -> list[int]:
    """The pids of ``root``'s children, their children, and so on (from /proc; none without it)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # after "pid (name)": state, ppid
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def resume_hint(name: str, storage: str | None) -> str:
    """The command that finishes a stopped sweep."""
    where = f" --storage {storage}" if storage else ""
    return f"sweeper resume {name}{where}"


def print_stopped(name: str, stopped: SweepStopped, storage: str | None, finished: int) -> None:
    """The driver's last line after a clean stop."""
    print(
        f"sweeper: sweep {name} stopped by {stopped.signal_name} ({finished} trials finished); its "
        f"unfinished runs are closed as KILLED. Finish it with: {resume_hint(name, storage)}",
        file=sys.stderr,
    )
