"""What ``sweeper resume`` needs to find a launch again, kept beside Ray Tune's experiment state.

``<storage>/<name>/sweeper.json`` holds the sweep file as launched, its config hash and path, the
tracking URI, and the MLflow experiment and parent run, so that a resumed sweep reattaches to the
same runs instead of starting new ones. With URI storage (``s3://...``) it is an object in the
same store, read and written through pyarrow like Ray Tune's own files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.run import object_store
from sweeper.run.cluster import is_uri
from sweeper.run.files import write_text_atomic
from sweeper.spec.schema import SweepSpec
from trainables.errors import InputError

if TYPE_CHECKING:  # an annotation only: the tracking module imports MLflow
    from sweeper.tracking.runs import SweepRun

STATE_FILE = "sweeper.json"


def save_resume_state(folder: Path | str, spec: SweepSpec, sweep_text: str, tracking: SweepRun, total: int) -> None:
    """Record a launch in its experiment folder, a path or a URI (created here; Ray Tune fills it later)."""
    state = {
        "name": spec.name,
        "sweep_file": str(spec.path.resolve()) if spec.path else None,
        "sweep_text": sweep_text,
        "config_hash": spec.config_hash(),
        "total_trials": total,
        "tracking_uri": tracking.uri,
        "experiment_id": tracking.experiment_id,
        "parent_run_id": tracking.parent_run_id,
    }
    text = json.dumps(state, indent=1) + "\n"
    if is_uri(folder):
        object_store.write_text(object_store.child(str(folder), STATE_FILE), text)
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(folder) / STATE_FILE, text)


def _read(folder: Path | str) -> tuple[str, str | None]:
    """Where the state of ``folder`` is, and its text (None when there is none)."""
    if is_uri(folder):
        uri = object_store.child(str(folder), STATE_FILE)
        return uri, object_store.read_text(uri)
    path = Path(folder) / STATE_FILE
    return str(path), path.read_text(encoding="utf-8") if path.is_file() else None


def read_resume_state(folder: Path | str, name: str) -> dict[str, Any]:
    """The recorded launch in ``folder`` (a path or a URI); a clear error when there is none."""
    try:
        path, text = _read(folder)
    except OSError as error:
        raise InputError(str(folder), f"unreadable resume state: {error}") from None
    if text is None:
        parent = str(folder).rsplit("/", 1)[0] if is_uri(folder) else Path(folder).parent
        raise InputError(
            "NAME",
            (
                f"no resumable sweep {name!r} in {parent}: {path} is missing. Give the "
                "--storage the sweep was launched with, or launch it again"
            ),
        )
    try:
        state = json.loads(text)
    except ValueError as error:
        raise InputError(path, f"unreadable resume state: {error}") from None
    missing = {"sweep_text", "config_hash", "tracking_uri", "experiment_id", "parent_run_id"} - set(state)
    if missing:
        raise InputError(path, f"resume state lacks {', '.join(sorted(missing))}")
    return state
