"""Cluster-side checks that need no Ray cluster: storage on several nodes, the job's runtime_env."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from sweeper.run import cluster, jobs
from trainables.errors import InputError


@pytest.mark.parametrize(
    "location, uri",
    [
        ("s3://bucket/sweeps", True),
        ("gs://b/x", True),
        ("hdfs://nn:8020/x", True),
        ("file:///tmp/x", False),
        ("/mnt/nfs/sweeps", False),
        ("sweeps", False),
        (None, False),
        ("c:/x", False),
    ],
)
def test_a_uri_is_any_scheme_but_file(location, uri) -> None:
    assert cluster.is_uri(location) is uri


def test_storage_root_keeps_uris_and_makes_paths_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cluster.storage_root("s3://bucket/sweeps/") == "s3://bucket/sweeps"
    assert cluster.storage_root(None) == str(tmp_path.resolve() / "sweeps")
    assert cluster.storage_root("out") == str(tmp_path.resolve() / "out")
    assert cluster.storage_root(f"file://{tmp_path}/x") == str(tmp_path.resolve() / "x")


def test_one_node_takes_any_storage() -> None:
    cluster.check_storage(None, shared=False, nodes=1, tracking_uri="sqlite:////tmp/mlflow.db")


def test_several_nodes_refuse_a_local_path_unless_declared_shared() -> None:
    with pytest.raises(InputError) as error:
        cluster.check_storage("/data/sweeps", shared=False, nodes=3, tracking_uri="http://mlflow:5000")
    assert error.value.where == "--storage" and "3 nodes" in error.value.message
    assert "s3://" in error.value.message and "--shared-storage" in error.value.message
    cluster.check_storage("/mnt/nfs/sweeps", shared=True, nodes=3, tracking_uri="sqlite:////mnt/nfs/mlflow.db")
    cluster.check_storage("s3://bucket/sweeps", shared=False, nodes=3, tracking_uri="http://mlflow:5000")


def test_several_nodes_refuse_a_local_sqlite_store_beside_remote_storage() -> None:
    with pytest.raises(InputError) as error:
        cluster.check_storage("s3://bucket/sweeps", shared=False, nodes=2, tracking_uri="sqlite:////tmp/mlflow.db")
    assert error.value.where == "tracking.uri" and "http://HOST:5000" in error.value.message


def test_the_job_carries_the_folder_and_runs_the_file_through_address_auto(tmp_path: Path) -> None:
    (tmp_path / "spaces").mkdir()
    sweep = tmp_path / "spaces" / "a b.yaml"
    sweep.write_text("name: x\n")
    plan = jobs.submission_plan(sweep, tmp_path, "s3://bucket/sweeps", shared=False)
    assert shlex.split(plan["entrypoint"]) == [
        "python",
        "-m",
        "sweeper.cli",
        "launch",
        "spaces/a b.yaml",
        "--address",
        "auto",
        "--storage",
        "s3://bucket/sweeps",
    ]
    env = plan["runtime_env"]
    assert env["working_dir"] == str(tmp_path.resolve())
    assert {".venv/", ".git/", "sweeps/", "mlruns/", "mlflow.db"} <= set(env["excludes"])
    # Sweeper's own code is not inside that folder, so it travels as py_modules.
    assert [Path(p).name for p in env["py_modules"]] == ["sweeper", "trainables"]
    shared = jobs.submission_plan(sweep, tmp_path, "/mnt/nfs/sweeps", shared=True)
    assert shared["entrypoint"].endswith("--storage /mnt/nfs/sweeps --shared-storage")


def test_the_repo_as_working_dir_carries_the_code_itself() -> None:
    repo = Path(cluster.__file__).resolve().parents[2]
    plan = jobs.submission_plan(repo / "search_spaces" / "ablation-L.yaml", repo, "/srv/s", shared=False)
    assert "py_modules" not in plan["runtime_env"]
    assert " launch search_spaces/ablation-L.yaml " in plan["entrypoint"]


def test_a_sweep_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    sweep = tmp_path / "elsewhere.yaml"
    sweep.write_text("name: x\n")
    with pytest.raises(InputError) as error:
        jobs.submission_plan(sweep, tmp_path / "project", "/srv/s", shared=False)
    assert "--working-dir" in error.value.message


@pytest.mark.parametrize(
    "address, field",
    [
        ("ray://head:10001", "--address"),
        ("http://head:8265", "--address"),
        ("head:port", "--address"),
    ],
)
def test_addresses_that_are_not_a_gcs_address_are_refused(address, field, monkeypatch) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", "x")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(InputError) as error:
        cluster.connect(address)
    assert error.value.where == field


def test_token_auth_with_no_token_anywhere_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(InputError) as error:
        jobs.job_client("http://127.0.0.1:1")
    assert error.value.where == "--cluster" and "RAY_AUTH_TOKEN" in error.value.message
