"""The driver's signal handling without a sweep: what the first signal records, how Tune is told,
what a stopped sweep's runs are tagged with, and how resume clears that tag."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweeper.run.stopping import StopSignals, SweepStopped, resume_hint
from sweeper.tracking.runs import STOPPED_BY_TAG, SweepRun, finish_sweep, reopen, start_sweep


def test_the_first_signal_is_recorded_not_raised_and_handlers_are_restored() -> None:
    before = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    tune_flag = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    with StopSignals() as stop:
        assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"  # Tune leaves SIGINT to us
        stop.check()  # nothing received yet
        os.kill(os.getpid(), signal.SIGTERM)  # would end the test process without the handler
        assert stop.received == "SIGTERM"
        with pytest.raises(SweepStopped) as stopped:
            stop.check()
        assert stopped.value.exit_code == 143
    assert {n: signal.getsignal(n) for n in before} == before
    assert os.environ.get("TUNE_DISABLE_SIGINT_HANDLER") == tune_flag


def test_the_tune_callback_passes_the_stop_to_tunes_interrupt_once() -> None:
    calls: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda number, frame: calls.append(number))
    try:
        with StopSignals() as stop:
            callback = stop.tune_callback()
            callback.on_step_begin(0, [])
            assert calls == []  # no signal, no stop
            os.kill(os.getpid(), signal.SIGINT)
            callback.on_step_begin(1, [])
            callback.on_step_begin(2, [])
            assert calls == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_the_resume_hint_repeats_only_a_given_storage() -> None:
    assert resume_hint("abl", None) == "sweeper resume abl"
    assert resume_hint("abl", "/data/sweeps") == "sweeper resume abl --storage /data/sweeps"


def test_a_stopped_sweep_tags_its_killed_runs_and_resume_clears_the_tag(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = start_sweep("stopped", None, uri, tags={})
    client = MlflowClient(uri)

    def child(trial_id: str) -> str:
        tags = {"mlflow.parentRunId": sweep.parent_run_id, "sweeper.kind": "trial", "sweeper.trial_id": trial_id}
        return client.create_run(sweep.experiment_id, tags=tags).info.run_id

    done, running = child("t1"), child("t2")
    client.set_terminated(done, "FINISHED")
    finish_sweep(SweepRun(uri, sweep.experiment_id, sweep.parent_run_id, "stopped"), {}, True, "SIGINT")
    assert client.get_run(done).data.tags.get(STOPPED_BY_TAG) is None  # it finished: not stopped
    for run_id in (running, sweep.parent_run_id):
        run = client.get_run(run_id)
        assert (run.info.status, run.data.tags[STOPPED_BY_TAG]) == ("KILLED", "SIGINT")
    reopen(client, client.get_run(running))
    run = client.get_run(running)
    assert run.info.status == "RUNNING" and STOPPED_BY_TAG not in run.data.tags


def test_the_tune_callback_pickles_without_the_drivers_handlers() -> None:
    # Tune pickles its callbacks with the experiment state; a handler installed before the sweep
    # (here one holding a lock) must not come along, nor the handlers at all.
    import threading

    import cloudpickle

    class Holder:
        lock = threading.Lock()

        def __init__(self) -> None:
            self.own_lock = threading.Lock()

        def handle(self, number: int, frame: object) -> None: ...

    previous = signal.signal(signal.SIGINT, Holder().handle)
    try:
        with StopSignals() as stop:
            copy = cloudpickle.loads(cloudpickle.dumps(stop.tune_callback()))
            os.kill(os.getpid(), signal.SIGINT)
            copy.on_step_begin(0, [])  # a restored copy knows no driver: it does nothing
    finally:
        signal.signal(signal.SIGINT, previous)
