"""``sweeper resume NAME``: finish a sweep whose driver died (killed, a lost head node, Ctrl-C).

Ray Tune restores the experiment from ``<storage>/<name>``: the searcher's state, finished trials
(not rerun), and unfinished ones from their last checkpoint. The trials reattach to their MLflow
runs (found by trial id under the same parent run), and the parent run, left RUNNING by the dead
driver, is closed at the end like any launch's. The sweep runs as it was launched: if its file
changed since, resume refuses rather than mix two search spaces in one experiment. While another
driver of the sweep is alive (its lease, :mod:`sweeper.run.lease`), resume refuses before it
touches anything; a dead driver's lease is taken over. Storage may be a folder or a URI
(``s3://bucket/prefix``): Ray Tune restores from either, and the resume state lives beside it.

The searcher is not built again here: Tune unpickles the one the launch built (``tuner.pkl``) and
loads its last checkpoint into it, so a sweep resumes with the searcher, and the checkpoint format,
it was launched with (Ray's ``Repeater`` for sweeps launched before ``SeedRepeater`` existed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from mlflow.tracking import MlflowClient
from rich.console import Console

from sweeper.run.cluster import is_uri, storage_root
from sweeper.run.driving import fit
from sweeper.run.launch import objectives_of, sweep_trainable_for
from sweeper.run.lease import lease_for
from sweeper.run.live import SweepProgress
from sweeper.run.object_store import open_storage, sweep_folder
from sweeper.run.resume_state import read_resume_state
from sweeper.run.stopping import StopSignals, SweepStopped
from sweeper.spec.loading import from_mapping, load
from sweeper.tracking.runs import SweepRun, reopen
from sweeper.tracking.uri import check_tracking_uri
from trainables.errors import InputError


def resume(name: str, storage: str | None = None, console: Console | None = None) -> int:
    """Resume sweep ``name`` from ``storage`` (default ./sweeps); returns launch's exit codes."""
    console = console or Console()
    root = storage_root(storage)
    if is_uri(root):
        root = open_storage(root)  # from here on without credentials: it is printed
    folder = sweep_folder(root, name)
    if is_uri(folder) or not Path(folder).is_dir():
        read_resume_state(folder, name)  # no such sweep: the usual error, and no folder created
    hint_storage = str(root) if storage else None  # as printed: without credentials
    with StopSignals() as stop:  # the first Ctrl-C or SIGTERM from here on stops the sweep cleanly
        try:
            # One driver per sweep: refused here, before any MLflow run or trial, while another one runs.
            with lease_for(folder, name):
                return _resume(name, folder, console, stop, hint_storage)
        except SweepStopped as stopped:  # before its runs were reopened: nothing changed
            print(f"sweeper: resume of {name} stopped by {stopped.signal_name} before it started", file=sys.stderr)
            return stopped.exit_code


def _resume(name: str, folder: str, console: Console, stop: StopSignals, hint_storage: str | None) -> int:
    from ray import tune

    stop.check()

    state = read_resume_state(folder, name)
    spec = from_mapping(yaml.safe_load(state["sweep_text"]))
    _refuse_a_changed_file(state)
    if not tune.Tuner.can_restore(str(folder)):
        raise InputError("NAME", f"{folder} holds no Ray Tune experiment state (tuner.pkl) to resume from")
    uri = state["tracking_uri"]
    check_tracking_uri(uri, "tracking.uri")
    tracking = SweepRun(uri, state["experiment_id"], state["parent_run_id"], spec.name)
    client = MlflowClient(uri)
    parent = client.get_run(tracking.parent_run_id)
    if parent.info.status == "FINISHED":
        console.print(f"sweep {name} already finished (parent run {tracking.parent_run_id}); nothing to resume")
        return 0
    reopen(client, parent)
    trainable = sweep_trainable_for(spec, tracking)
    progress = SweepProgress(total=int(state.get("total_trials") or 0), objectives=objectives_of(spec))

    def restored_tuner(callbacks: list) -> Any:
        tuner = tune.Tuner.restore(str(folder), trainable=trainable, resume_unfinished=True, resume_errored=True)
        # Tune restores the launch's run config; its callbacks held the dead driver's live view.
        # Ray 2.60 keeps that config on the internal tuner (Tuner.restore takes no run_config).
        internal = tuner._local_tuner
        assert internal is not None  # a local restore (no Ray Client) always has one
        internal._run_config.callbacks = callbacks
        return tuner

    return fit(restored_tuner, name, tracking, progress, str(folder), console, stop, hint_storage)


def _refuse_a_changed_file(state: dict[str, Any]) -> None:
    path = state.get("sweep_file")
    if not path or not Path(path).is_file():
        return  # the file is gone: resume runs the recorded copy
    current = load(path).config_hash()
    if current != state["config_hash"]:
        raise InputError(
            path,
            (
                f"changed since the sweep was launched (config hash {state['config_hash'][:12]} -> {current[:12]}); "
                "resume runs a sweep as launched. Restore the file, or launch the changed one under a new name"
            ),
        )
