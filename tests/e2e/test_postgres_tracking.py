"""A sweep tracked by an MLflow server on a real PostgreSQL, as in docker/docker-compose.yml.

The test set-up starts PostgreSQL from the Debian packages on 127.0.0.1 and ``mlflow server`` with
the compose file's own command on top of it (proxied artifacts). `sweeper launch` runs a sweep
against it and `sweeper report` reads the table back through the server; the rows are then checked
in PostgreSQL itself, and the artifacts in the server's own artifact folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from servers import mlflow_server, postgres_server
from sqlalchemy import create_engine, text

from sweeper.cli import main
from sweeper.tracking import results

pytestmark = pytest.mark.slow

SWEEP = {
    "name": "pg-e2e",
    "method": "ft",
    "model": "zoo/tiny-clip-v1",
    "data": {
        "source": {"shapes": {"per_class": {"train": 16, "val": 10, "test": 10}}},
        "id": "photo",
        "ood": ["sketch"],
    },
    "train": {"epochs": 2, "batch_size": 40},
    "search": {"lr": {"grid": [1e-4, 1e-3]}},
    "seeds": [0],
    "resources": {"cpu": 1},
}


def test_sweep_tracked_by_an_mlflow_server_on_postgresql(local_ray, workdir: Path, capsys) -> None:
    with postgres_server() as database, mlflow_server(workdir, backend_store_uri=database) as uri:
        path = workdir / "pg-e2e.yaml"
        path.write_text(yaml.safe_dump({**SWEEP, "tracking": {"uri": uri}}, sort_keys=False))
        assert main(["launch", str(path)]) == 0
        assert not (workdir / "mlflow.db").exists()  # nothing fell back to the embedded store

        capsys.readouterr()
        assert main(["report", "pg-e2e", "--tracking-uri", uri, "--rows", "lr", "--format", "csv"]) == 0
        table = capsys.readouterr().out
        frame = results.load("pg-e2e", tracking_uri=uri)
        assert len(frame) == 2 and set(frame["status"]) == {"FINISHED"}
        for _, trial in frame.iterrows():
            assert f"{trial['id/acc']}"[:5] in table

        # The runs, their metric history and the sweep's parent live in PostgreSQL.
        with create_engine(database).connect() as sql:
            statuses = dict(
                sql.execute(
                    text(
                        "SELECT r.run_uuid, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                        "WHERE t.key = 'sweeper.sweep' AND t.value = 'pg-e2e'"
                    )
                ).all()
            )
            assert sorted(statuses.values()) == ["FINISHED"] * 3  # one parent, two trials
            history = sql.execute(
                text("SELECT run_uuid, count(*) FROM metrics WHERE key = 'id/acc' GROUP BY run_uuid")
            ).all()
            assert sorted(n for _, n in history) == [3, 3]  # one value per epoch and the summary, per trial
            assert {run for run, _ in history} == set(frame["run_id"])

        # Artifacts went through the server (mlflow-artifacts:/) into its own folder.
        served = {p.name for p in (workdir / "mlartifacts").rglob("*") if p.is_file()}
        assert "trial.yaml" in served
