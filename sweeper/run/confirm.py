"""Search, then confirm: rerun a sweep's best configurations on fresh seeds.

The configurations of a finished sweep are ranked by its selection metric (the objective, a
validation metric unless the sweep was oracle-selected), as the mean over the seeds they ran with.
The top K run again on S seeds that the search never used, as a child sweep ``<name>-confirm``
whose parent run nests under the search's parent run in MLflow. Its table reports their test
metrics with 95 % confidence intervals over the new seeds. This keeps the seeds that chose the
hyperparameters apart from those that measure them: the protocol of DomainBed and FLYP.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import yaml

from sweeper.spec.loading import from_mapping
from sweeper.spec.schema import SweepSpec
from sweeper.spec.sections import SchedulerSpec, TrackingSpec
from sweeper.tracking import results
from trainables.errors import InputError

SWEEP_FILE_ARTIFACT = "sweep.yaml"
CONFIRM_OF_TAG = "sweeper.confirm_of"


def sweep_file_of(client: Any, parent_run_id: str) -> str:
    """The sweep file a launch ran, from its parent run's ``sweep.yaml`` artifact."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    # MLflow draws a progress bar on stderr for any download; a one-line error must stay one line.
    with mock.patch.dict(os.environ, {MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name: "false"}):
        return _download_sweep_file(client, parent_run_id)


def _download_sweep_file(client: Any, parent_run_id: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(parent_run_id, SWEEP_FILE_ARTIFACT, folder)
        except Exception as error:  # MLflow raises its own types for a missing artifact
            raise InputError(
                "NAME",
                f"parent run {parent_run_id} has no readable {SWEEP_FILE_ARTIFACT} artifact "
                f"({type(error).__name__}); was it launched by sweeper?",
            ) from error
        return Path(path).read_text(encoding="utf-8")


def _value(raw: Any) -> Any:
    """A point's value as the searcher gave it: MLflow keeps lists (crop_scale) as their text."""
    if isinstance(raw, str) and raw[:1] in "[{":
        return yaml.safe_load(raw)
    if hasattr(raw, "item"):  # numpy scalars from the frame
        return raw.item()
    return raw


def rank_configurations(df: pd.DataFrame, keys: list[str], metric: str, mode: str) -> pd.DataFrame:
    """Finished trials grouped by configuration (``config_hash``): the searched ``keys``, the mean
    of ``metric`` over seeds and the seed count, best first (earliest configuration on ties)."""
    done = df[(df["status"] == "FINISHED") & df[metric].notna()] if metric in df.columns else df.iloc[0:0]
    if done.empty:
        raise InputError("NAME", f"no finished trial of sweep {df.attrs.get('sweep')!r} logged {metric!r}")
    grouped = done.groupby("config_hash", sort=False)
    table = grouped.first()[[k for k in keys if k in done.columns]].copy()
    table["mean"] = grouped[metric].mean()
    table["seeds"] = grouped["seed"].nunique()
    return table.sort_values("mean", ascending=mode == "min", kind="stable")


def point_of_row(row: pd.Series, keys: list[str]) -> dict[str, Any]:
    """The searched values of one configuration; a conditional key it does not use is left out."""
    point = {}
    for key in keys:
        if key in row.index and not pd.isna(row[key]):
            point[key] = _value(row[key])
    return point


def confirm_spec(spec: SweepSpec, used_seeds: list[int], seeds: int, tracking_uri: str, experiment: str) -> SweepSpec:
    """The child sweep: the same file on ``seeds`` new seeds, every configuration once per seed."""
    first = max(used_seeds, default=-1) + 1
    return spec.model_copy(
        update={
            "name": f"{spec.name}-confirm",
            "seeds": list(range(first, first + seeds)),
            "searcher": "grid",
            "num_samples": 1,
            "scheduler": SchedulerSpec(),
            "tracking": TrackingSpec(uri=tracking_uri, experiment=experiment),
        }
    )


def plan(
    name: str,
    top: int,
    seeds: int,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
) -> tuple[SweepSpec, list[dict[str, Any]], dict[str, str], pd.DataFrame]:
    """What ``sweeper confirm`` runs: the child spec, its points, its parent run's tags, and the ranking."""
    if top < 1:
        raise InputError("--top", f"must be at least 1, not {top}")
    if seeds < 1:
        raise InputError("--seeds", f"must be at least 1, not {seeds}")
    client, parent = results.resolve_parent(name, tracking_uri, experiment, parent_run_id)
    meta = results.sweep_meta(name, tracking_uri, experiment, parent.info.run_id)
    text = sweep_file_of(client, parent.info.run_id)
    spec = from_mapping(yaml.safe_load(text), f"{name} (sweep.yaml of parent run {parent.info.run_id[:8]})")
    objective = meta.get("objective") or spec.primary_objective.model_dump()
    keys = [k for k in (meta.get("search_keys") or spec.search_keys) if k != "seed"]
    df = results.load(name, tracking_uri, experiment, parent.info.run_id)
    ranking = rank_configurations(df, keys, objective["metric"], objective.get("mode", "max"))
    chosen = ranking.head(top)
    points = [point_of_row(row, keys) for _, row in chosen.iterrows()]
    uri = tracking_uri or results.default_tracking_uri()
    child = confirm_spec(spec, [int(s) for s in df["seed"].dropna().unique()], seeds, uri, meta["experiment"])
    tags = {
        "mlflow.parentRunId": parent.info.run_id,
        CONFIRM_OF_TAG: parent.info.run_id,
        "sweeper.confirm_points": json.dumps(points, default=str),
    }
    return child, points, tags, chosen
