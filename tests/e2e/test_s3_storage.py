"""Sweeps whose storage is an object store (``--storage s3://bucket/prefix``), with real driver
processes against moto's S3-compatible server (started here; endpoint and credentials the AWS way).

1. A launch finishes: Ray Tune's experiment state, the trials' checkpoints and sweeper.json are
   objects in the bucket, and ``sweeper status NAME --storage s3://...`` finds the sweep's MLflow
   store from sweeper.json. The credentials were written into the URI: no output, MLflow record,
   object or file holds the secret, and the URI is printed and tagged without it.
2. The driver is SIGKILLed once one trial finished and another is part-way with a checkpoint in the
   bucket; while it ran, a second driver was refused naming its host and pid (the S3 lease). Then
   ``sweeper resume NAME --storage s3://...`` finishes the sweep: one MLflow run per trial, the
   finished trial not rerun, the part-way one continued from its checkpoint with no repeated step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from mlflow.tracking import MlflowClient
from processes import sigkill_with_one_trial_finished_and_one_midway
from servers import S3_KEY_ID, S3_SECRET, moto_server, s3_env
from sweep_files import killable_sweep

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "sweeps"
PIPES = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}


@pytest.fixture()
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        bucket_client(url).create_bucket(Bucket=BUCKET)
        yield url


def bucket_client(endpoint: str) -> object:
    env = s3_env(endpoint)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def objects(endpoint: str) -> dict[str, bytes]:
    client = bucket_client(endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]  # type: ignore[attr-defined]
    return {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}  # type: ignore[attr-defined]


def sweeper(cwd: Path, env: dict[str, str], *args: str, **popen: object) -> subprocess.Popen:
    """This checkout's CLI in a process of its own, with only the AWS variables in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.Popen(
        [sys.executable, "-m", "sweeper.cli", *args],
        cwd=cwd,
        env={**clean, **env, "PYTHONPATH": str(ROOT), "COLUMNS": "250"},  # rich wraps no line
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def finish(process: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, " ".join(((out or "") + (err or "")).split())  # whitespace as single spaces


def runs(client: MlflowClient, name: str) -> list:
    found = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return [r for r in found if r.data.tags.get("sweeper.sweep") == name]


def of_kind(found: list, kind: str) -> list:
    return [r for r in found if r.data.tags.get("sweeper.kind") == kind]


def assert_no_secret(texts: list[str], endpoint: str, client: MlflowClient, name: str, workdir: Path) -> None:
    """The secret is in no output, no MLflow tag or param, no object in the bucket, no file here."""
    for text in texts:
        assert S3_SECRET not in text
    for run in runs(client, name):
        assert S3_SECRET not in repr(run.data.tags) + repr(run.data.params), run.info.run_name
    for key, body in objects(endpoint).items():
        assert S3_SECRET.encode() not in body, key
    for path in workdir.rglob("*"):  # the MLflow store and its artifacts, the driver's logs
        assert not path.is_file() or S3_SECRET.encode() not in path.read_bytes(), path


def test_a_sweep_on_s3_storage_finishes_and_keeps_its_credentials_out_of_every_record(
    workdir: Path, endpoint: str
) -> None:
    name = "s3-launch"
    # Two epochs: a trial checkpoints every epoch but its last (sweeper.run.trial).
    sweep = {**killable_sweep(name), "train": {"epochs": 2, "batch_size": 40, "lr": 1e-4}}
    sweep["search"] = {"L": {"grid": [2, 4]}}
    (workdir / "s.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False))
    env = s3_env(endpoint, credentials=False)  # the credentials come only with the URI
    storage = f"s3://{S3_KEY_ID}:{S3_SECRET}@{BUCKET}/team/prefix"
    code, launched = finish(sweeper(workdir, env, "launch", "s.yaml", "--storage", storage, **PIPES))
    assert code == 0, launched
    assert f"storage s3://{BUCKET}/team/prefix/{name};" in launched

    keys = sorted(objects(endpoint))
    folder = f"team/prefix/{name}/"
    assert f"{folder}sweeper.json" in keys and f"{folder}tuner.pkl" in keys
    assert any(k.startswith(f"{folder}experiment_state-") and k.endswith(".json") for k in keys), keys
    checkpoints = [k for k in keys if k.startswith(folder) and "/checkpoint_" in k and k.endswith("state.pt")]
    assert len({k.split("/")[3] for k in checkpoints}) == 2, keys  # each trial's own checkpoint
    assert not any(k.endswith("driver.lease") for k in keys)  # released at the end

    # From another folder: the MLflow store is the one the launch recorded in sweeper.json.
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    code, status = finish(sweeper(elsewhere, env, "status", name, "--storage", storage, **PIPES))
    assert code == 0, status
    assert f"{name} (FINISHED): 2/2 trials done; 2 finished" in status
    assert f"driver: not alive (no lease in s3://{BUCKET}/team/prefix/{name})" in status

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    parents = of_kind(runs(client, name), "sweep")
    assert [p.data.tags["sweeper.storage"] for p in parents] == [f"s3://{BUCKET}/team/prefix"]
    assert len(of_kind(runs(client, name), "trial")) == 2
    assert_no_secret([launched, status], endpoint, client, name, workdir)


def test_a_sigkilled_driver_on_s3_storage_is_resumed_from_the_bucket(workdir: Path, endpoint: str) -> None:
    name = "s3-resume"
    (workdir / "s.yaml").write_text(yaml.safe_dump(killable_sweep(name), sort_keys=False))
    env, storage, host = s3_env(endpoint), f"s3://{BUCKET}/prefix", socket.gethostname()
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    client.search_experiments()  # create the store's tables before two processes race to (see test_resume)
    log = (workdir / "driver.log").open("w")
    driver = sweeper(workdir, env, "launch", "s.yaml", "--storage", storage, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while not [r for r in of_kind(runs(client, name), "trial") if r.info.status == "RUNNING"]:
            assert driver.poll() is None and time.monotonic() < deadline, "no trial started"
            time.sleep(0.5)
        # A second driver of the running sweep: refused by the lease in the bucket, naming the first.
        code, second = finish(sweeper(workdir, env, "resume", name, "--storage", storage, **PIPES))
        assert code == 2, second
        assert f"a driver is already running it: pid {driver.pid} on host {host}, last heartbeat" in second
        assert f"(lease s3://{BUCKET}/prefix/{name}/driver.lease)" in second
        code, alive = finish(sweeper(workdir, env, "status", name, **PIPES))  # storage: the parent run's tag
        assert f"driver: alive (pid {driver.pid} on host {host}, last heartbeat" in alive, alive
        at_kill = sigkill_with_one_trial_finished_and_one_midway(driver, client, name, 900)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        log.close()
    midway_id = at_kill["midway"].data.tags["sweeper.trial_id"]
    assert any(f"_{midway_id}_" in k and "/checkpoint_" in k for k in objects(endpoint)), "no checkpoint in the bucket"
    code, dead = finish(sweeper(workdir, env, "status", name, **PIPES))
    assert f"driver: not alive (lease of pid {driver.pid} on host {host}: its process is gone)" in dead, dead

    code, resumed = finish(sweeper(workdir, env, "resume", name, "--storage", storage, **PIPES))
    assert code == 0, resumed
    assert f"taking over the stale lease of pid {driver.pid} on host {host} (its process is gone)" in resumed
    found = runs(client, name)
    parents, trials = of_kind(found, "sweep"), of_kind(found, "trial")
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert sorted(t.data.params["L"] for t in trials) == ["2", "4", "6"]  # one run per trial
    assert {t.info.status for t in trials} == {"FINISHED"}
    by_id = {t.info.run_id: t for t in trials}
    assert by_id[at_kill["finished"].info.run_id].info.end_time == at_kill["finished"].info.end_time  # not rerun
    for trial in trials:
        steps = [m.step for m in client.get_metric_history(trial.info.run_id, "id/acc")]
        assert steps == [0, 1, 2, 3, 4], (trial.data.params["L"], steps)  # no gap, no repeat; 4 is the summary
    assert not any(k.endswith("driver.lease") for k in objects(endpoint))
    assert_no_secret(
        [second, alive, dead, resumed, (workdir / "driver.log").read_text()], endpoint, client, name, workdir
    )
