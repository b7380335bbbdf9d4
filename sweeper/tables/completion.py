"""Which trials ran to their last epoch, and why the others did not.

A front must hold only trained models: a trial stopped early (a failure, a kill, ASHA) sits near
zero-shot and would look non-dominated. The evidence, from a ``results.load`` frame:

- ``status``: MLflow's run status; anything but FINISHED (FAILED, KILLED, RUNNING) is unfinished.
- ``best_epoch``: a trial logs its summary (with ``best_epoch``) only after its last epoch, so a
  FINISHED trial without one stopped early: an ASHA stop ends the trial without an error, and the
  driver closes its run as FINISHED. A zero-shot trial, which never trains, has its summary too.
- ``epochs_run`` (added by ``results.add_epochs_run`` from the metric histories) against the
  configured ``epochs``: for runs from before summaries existed, and to say how far a stopped
  trial got.
"""

from __future__ import annotations

import math

import pandas as pd

FINISHED = "FINISHED"


def _epochs(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df.columns:
        return pd.Series(math.nan, index=df.index, dtype="float64")
    return pd.to_numeric(df[column], errors="coerce").astype("float64")


def complete_mask(df: pd.DataFrame) -> pd.Series:
    """True for each trial that finished its last epoch (see the module notes)."""
    finished = df["status"] == FINISHED if "status" in df.columns else pd.Series(True, index=df.index)
    run, configured = _epochs(df, "epochs_run"), _epochs(df, "epochs")
    if "best_epoch" in df.columns:
        summarised = df["best_epoch"].notna()
        # No summary at all in the sweep: a run from before summaries; the epochs decide.
        if not summarised.any():
            summarised = ~(run < configured)
    else:
        summarised = ~(run < configured)  # NaN (unknown) compares False: such a trial counts as complete
    return (finished & summarised).astype(bool)


def reason(row: pd.Series) -> str:
    """Why one trial is left out: its status, and the epochs it logged of those configured."""
    run, configured = row.get("epochs_run", math.nan), row.get("epochs", math.nan)
    progress = ""
    if not pd.isna(run) and not pd.isna(configured):
        progress = f"{int(run)} of {int(configured)} epochs"
    elif not pd.isna(run):
        progress = f"{int(run)} epochs logged"
    status = str(row.get("status", FINISHED))
    # FINISHED without a summary: the run ended cleanly before its last epoch, as an ASHA stop does.
    what = "stopped early (no summary after the last epoch; e.g. ASHA)" if status == FINISHED else status
    return f"{what}, {progress}" if progress else what


def unfinished(df: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The trials left out of a front: ``trial_id``, the ``labels`` columns, ``seed``, ``status``,
    ``epochs_run``, ``epochs`` and ``reason``, in trial order."""
    out = df[~complete_mask(df)]
    wanted = [c for c in dict.fromkeys(["trial_id", *labels, "seed", "status", "epochs_run", "epochs"]) if c in out]
    table = out[wanted].copy()
    table["reason"] = [reason(row) for _, row in out.iterrows()]
    return table.reset_index(drop=True)
