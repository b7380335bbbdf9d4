"""What the pareto report reads from MLflow beyond ``results.load``: how many epochs each trial
logged, and the sweep file a launch was started from (its data spec names the classes and the
domains the zoo models are evaluated on)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from sweeper.tracking import bulk_reads
from sweeper.tracking.launches import Launch, runs_by_id
from sweeper.tracking.results import open_store, resolve_parent
from sweeper.tracking.runs import summary_step_of

# Metrics every epoch logs (train/loss when the method trains, id/acc and val/acc always; OOD
# metrics may skip epochs with eval_every > 1): the history that counts a trial's epochs.
EPOCH_METRICS = ("train/loss", "id/acc", "val/acc")
SWEEP_ARTIFACT = "sweep.yaml"  # the sweep file as launched (sweeper.tracking.runs.start_sweep)
_NOTE = re.compile(r"```yaml\n(.*)\n```", re.DOTALL)


def add_epochs_run(frame: pd.DataFrame, tracking_uri: str | None = None, launch: Launch | None = None) -> pd.DataFrame:
    """Add ``epochs_run``: how many epochs each trial logged (the summary step of a trial that
    finished its last epoch, else one past the last step of a per-epoch metric; 0 when none).
    With the configured ``epochs`` it tells a trial stopped early (``sweeper.tables.completion``).
    The runs come from ``launch`` when given (else one read each), the histories in bulk."""
    client = launch.client if launch is not None else open_store(tracking_uri)
    runs = runs_by_id(client, list(frame["run_id"]), launch)
    summaries = {run_id: summary_step_of(run) for run_id, run in runs.items()}
    # Only a trial without a summary needs a history: that of its first per-epoch metric.
    wanted = {
        run_id: [metric]
        for run_id, run in runs.items()
        if summaries[run_id] is None
        for metric in [next((m for m in EPOCH_METRICS if m in run.data.metrics), None)]
        if metric
    }
    found = bulk_reads.histories(client, wanted, bulk=launch is None or launch.bulk)
    counts = []
    for run_id in frame["run_id"]:
        summary = summaries[run_id]
        if summary is not None:
            counts.append(float(summary))
            continue
        steps = [step for step, _, _ in found[run_id, wanted[run_id][0]]] if run_id in wanted else []
        counts.append(float(max(steps) + 1) if steps else 0.0)
    frame["epochs_run"] = pd.Series(counts, index=frame.index, dtype="float64")
    return frame


def sweep_file(
    sweep: str, tracking_uri: str | None = None, experiment: str | None = None, parent_run_id: str | None = None
) -> dict[str, Any] | None:
    """The sweep file of a launch, parsed: from the parent run's description (a tag, so no artifact
    store is needed), else its ``sweep.yaml`` artifact; None when neither holds a mapping."""
    import yaml

    client, parent = resolve_parent(sweep, tracking_uri, experiment, parent_run_id)
    match = _NOTE.search(parent.data.tags.get("mlflow.note.content", ""))
    text = match.group(1) if match else None
    if text is None:
        try:
            with tempfile.TemporaryDirectory() as folder:
                path = client.download_artifacts(parent.info.run_id, SWEEP_ARTIFACT, folder)
                text = Path(path).read_text(encoding="utf-8")
        except Exception:  # noqa: BLE001 - no artifact (an older launch) or an unreachable artifact store
            return None
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None
