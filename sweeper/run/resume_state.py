"""What ``sweeper resume`` needs to find a launch again, kept beside Ray Tune's experiment state.

``<storage>/<name>/sweeper.json`` holds the sweep file as launched, its config hash and path, the
tracking URI, and the MLflow experiment and parent run, so that a resumed sweep reattaches to the
same runs instead of starting new ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.run.files import write_text_atomic
from sweeper.spec.schema import SweepSpec
from trainables.errors import InputError

if TYPE_CHECKING:  # an annotation only: the tracking module imports MLflow
    from sweeper.tracking.runs import SweepRun

STATE_FILE = "sweeper.json"


def save_resume_state(folder: Path, spec: SweepSpec, sweep_text: str, tracking: SweepRun, total: int) -> None:
    """Record a launch in its experiment folder (created here; Ray Tune fills it later)."""
    folder.mkdir(parents=True, exist_ok=True)
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
    write_text_atomic(folder / STATE_FILE, json.dumps(state, indent=1) + "\n")


def read_resume_state(folder: Path, name: str) -> dict[str, Any]:
    """The recorded launch in ``folder``; a clear error when there is none."""
    path = folder / STATE_FILE
    if not path.is_file():
        raise InputError(
            "NAME",
            (
                f"no resumable sweep {name!r} in {folder.parent}: {path} is missing. Give the "
                "--storage the sweep was launched with, or launch it again"
            ),
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(str(path), f"unreadable resume state: {error}") from None
    missing = {"sweep_text", "config_hash", "tracking_uri", "experiment_id", "parent_run_id"} - set(state)
    if missing:
        raise InputError(str(path), f"resume state lacks {', '.join(sorted(missing))}")
    return state
