"""Sweeps on a real two-node Ray cluster on this machine: ``--address``, ``--cluster`` (Ray Jobs),
status / logs / stop, the storage check, and the errors for unreachable clusters.

The cluster is two ``ray start --block`` processes (a head and a worker), on loopback addresses
(127.0.0.2 and 127.0.0.3, so that Ray records which node ran each trial), each with its own temp
dir and explicit ports, token auth on with a token made for this test. Drivers run in subprocesses
(the session's embedded Ray, ``local_ray``, may live in this process). Teardown stops only what
this module started: the two process groups, then any process that carries this test's token.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

BIN = Path(sys.executable).parent
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
TINY_DATA = {
    "source": {"shapes": {"per_class": {"train": 16, "val": 10, "test": 10}}},
    "id": "photo",
    "ood": ["clipart", "sketch"],
}
NODE_PORTS = [
    "--object-manager-port",
    "--node-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
]


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@dataclass
class Cluster:
    gcs: str  # HOST:PORT for --address
    dashboard: str  # URL for --cluster
    token: str
    env: dict[str, str]
    shared: Path  # stands for an NFS mount: both nodes are on this machine
    worker: subprocess.Popen | None = None  # the worker node's `ray start --block`, for the node-loss test

    def sweeper(self, *args: str, cwd: Path, timeout: float = 420) -> subprocess.CompletedProcess:
        return self.sweepers([*args], cwd=cwd, timeout=timeout)[0]

    def sweepers(self, *commands: list[str], cwd: Path, timeout: float = 420) -> list[subprocess.CompletedProcess]:
        """Run ``sweeper`` commands side by side (each start imports torch: seconds on this box)."""
        env = {k: v for k, v in self.env.items() if k != "RAY_AUTH_MODE"}  # sweeper sets it itself
        running = [
            subprocess.Popen(
                [str(BIN / "sweeper"), *argv],
                cwd=cwd,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for argv in commands
        ]
        done = []
        for argv, process in zip(commands, running, strict=True):
            out, err = process.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(argv, process.returncode, out, err))
        return done

    def api(self, path: str):
        headers = {"Authorization": f"Bearer {self.token}"}
        request = urllib.request.Request(self.dashboard + path, headers=headers)  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return json.load(response)

    def job_status(self, job_id: str) -> str:
        return self.api(f"/api/jobs/{job_id}")["status"]

    def wait_job(self, job_id: str, until: set[str], timeout: float = 480) -> str:
        deadline = time.monotonic() + timeout
        while (status := self.job_status(job_id)) not in until:
            assert time.monotonic() < deadline, f"job {job_id} still {status} after {timeout}s"
            time.sleep(2)
        return status


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [str(BIN / "ray"), "start", *args, "--block"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _node(ip: str, temp: Path, ports: list[int]) -> list[str]:
    args = [
        "--node-ip-address",
        ip,
        "--temp-dir",
        str(temp),
        "--num-cpus",
        "1",
        "--disable-usage-stats",
        "--min-worker-port",
        "0",
        "--max-worker-port",
        "0",
    ]  # 0: workers take ports the OS hands out
    for flag, port in zip(NODE_PORTS, ports, strict=True):
        args += [flag, str(port)]
    return args


def _ours(token: str) -> list[int]:
    """Processes whose environment holds this test's token: started by this module, and nobody else."""
    mine, marker = [], f"RAY_AUTH_TOKEN={token}".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    mine.append(int(proc.name))
            except OSError:
                pass
    return mine


def _stop(processes: list[subprocess.Popen], token: str) -> None:
    for process in reversed(processes):  # worker, then head; SIGTERM lets `ray start --block` drain
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # what its group left behind
        process.wait()
    for pid in _ours(token):  # job drivers run in sessions of their own
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def two_nodes():
    root = Path(tempfile.mkdtemp(prefix="swr-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    token = secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONUNBUFFERED="1",
    )
    gcs, dashboard, client, *ports = free_ports(15)
    processes = []
    try:
        (root / "head").mkdir()
        (root / "worker").mkdir()
        processes.append(
            _start(
                [
                    "--head",
                    "--port",
                    str(gcs),
                    "--include-dashboard",
                    "true",
                    "--dashboard-host",
                    "127.0.0.1",
                    "--dashboard-port",
                    str(dashboard),
                    "--ray-client-server-port",
                    str(client),
                    *_node(HEAD_IP, root / "head", ports[:6]),
                ],
                env,
                root / "head.log",
            )
        )
        cluster = Cluster(f"{HEAD_IP}:{gcs}", f"http://127.0.0.1:{dashboard}", token, env, root / "shared")
        cluster.shared.mkdir()
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection((HEAD_IP, gcs), timeout=1).close()
                break
            except OSError:
                assert processes[0].poll() is None, (root / "head.log").read_text()
                assert time.monotonic() < deadline, "the head node did not start"
                time.sleep(0.5)
        processes.append(
            _start(
                ["--address", cluster.gcs, *_node(WORKER_IP, root / "worker", ports[6:12])], env, root / "worker.log"
            )
        )
        cluster.worker = processes[-1]
        while True:
            try:
                nodes = cluster.api("/api/v0/nodes")["data"]["result"]["result"]
                if sorted(n["node_ip"] for n in nodes if n["state"] == "ALIVE") == [HEAD_IP, WORKER_IP]:
                    break
            except OSError:
                pass
            assert all(p.poll() is None for p in processes), (root / "worker.log").read_text()
            assert time.monotonic() < deadline, "the two nodes did not come up"
            time.sleep(1)
        yield cluster
    finally:
        _stop(processes, token)
        shutil.rmtree(root, ignore_errors=True)


def write_sweep(folder: Path, name: str, db: Path, **overrides) -> Path:
    sweep = {
        "name": name,
        "method": "lipsum_ft",
        "model": "zoo/tiny-clip-v1",
        "data": TINY_DATA,
        "train": {"epochs": 1, "batch_size": 40, "lr": 1e-4},
        "fixed": {"M": 8},
        "search": {"L": {"grid": [2, 4]}},
        "seeds": [0],
        "resources": {"cpu": 1},
        "tracking": {"uri": f"sqlite:///{db}"},
        **overrides,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def sweep_runs(db: Path, sweep: str) -> tuple[list, list]:
    client = MlflowClient(f"sqlite:///{db}")
    runs = [
        r
        for e in client.search_experiments()
        for r in client.search_runs([e.experiment_id])
        if r.data.tags.get("sweeper.sweep") == sweep
    ]
    return (
        [r for r in runs if r.data.tags.get("sweeper.kind") == "sweep"],
        [r for r in runs if r.data.tags.get("sweeper.kind") == "trial"],
    )


def trial_nodes(experiment: Path) -> set[str]:
    """Where Ray ran each trial, as Tune recorded it in the experiment's state."""
    from ray.tune import ExperimentAnalysis

    return {trial.last_result["node_ip"] for trial in ExperimentAnalysis(str(experiment)).trials}


def check_finished(cluster: Cluster, name: str) -> None:
    parents, children = sweep_runs(cluster.shared / "mlflow.db", name)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    assert sorted(c.data.params["L"] for c in children) == ["2", "4"]
    assert all("ood/avg_acc" in c.data.metrics for c in children)
    assert trial_nodes(cluster.shared / "sweeps" / name) == {HEAD_IP, WORKER_IP}


def test_a_local_storage_path_is_refused_on_two_nodes(two_nodes: Cluster, tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "local-storage", tmp_path / "mlflow.db")
    done = two_nodes.sweeper("launch", str(sweep), "--address", two_nodes.gcs, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("sweeper: error: --storage:") and "2 nodes" in error and "s3://" in error
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "sweeps").exists()


def test_address_runs_the_sweep_on_both_nodes(two_nodes: Cluster, tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "address-e2e", two_nodes.shared / "mlflow.db")
    done = two_nodes.sweeper(
        "launch",
        str(sweep),
        "--address",
        two_nodes.gcs,
        "--storage",
        str(two_nodes.shared / "sweeps"),
        "--shared-storage",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    check_finished(two_nodes, "address-e2e")


def test_cluster_submits_a_ray_job_that_runs_on_both_nodes(two_nodes: Cluster, tmp_path: Path) -> None:
    project = tmp_path / "project"  # the folder sent with the job; Sweeper's code goes as py_modules
    write_sweep(project / "sweeps-in", "job-e2e", two_nodes.shared / "mlflow.db")
    done = two_nodes.sweeper(
        "launch",
        "sweeps-in/job-e2e.yaml",
        "--cluster",
        two_nodes.dashboard,
        "--storage",
        str(two_nodes.shared / "sweeps"),
        "--shared-storage",
        cwd=project,
    )
    assert done.returncode == 0, done.stderr
    job = done.stdout.splitlines()[0]
    # The client has exited; the job goes on without it.
    assert two_nodes.job_status(job) in {"PENDING", "RUNNING", "SUCCEEDED"}
    assert two_nodes.wait_job(job, {"SUCCEEDED", "FAILED", "STOPPED"}) == "SUCCEEDED", two_nodes.sweeper(
        "logs", job, "--cluster", two_nodes.dashboard, cwd=tmp_path
    ).stdout
    check_finished(two_nodes, "job-e2e")

    listed, logs, missing = two_nodes.sweepers(
        ["status", "--cluster", two_nodes.dashboard, "--json"],
        ["logs", job, "--cluster", two_nodes.dashboard],
        ["logs", "no-such-job", "--cluster", two_nodes.dashboard],
        cwd=tmp_path,
    )
    row = next(r for r in json.loads(listed.stdout) if r["job"] == job)
    assert row["status"] == "SUCCEEDED" and row["sweep"] == "job-e2e"
    assert row["entrypoint"].startswith("python -m sweeper.cli launch sweeps-in/job-e2e.yaml --address auto")
    assert logs.returncode == 0 and "sweep job-e2e: 2 trials finished, 0 failed" in logs.stdout
    assert missing.returncode == 2 and "JOB: no job 'no-such-job'" in missing.stderr


def test_stop_ends_a_running_job_and_closes_its_runs(two_nodes: Cluster, tmp_path: Path) -> None:
    db = two_nodes.shared / "mlflow.db"
    write_sweep(tmp_path, "stop-e2e", db, train={"epochs": 50, "batch_size": 40, "lr": 1e-4})
    sweep_runs(db, "stop-e2e")  # the store exists before the driver's: polling it never races its migrations
    done = two_nodes.sweeper(
        "launch",
        "stop-e2e.yaml",
        "--cluster",
        two_nodes.dashboard,
        "--storage",
        str(two_nodes.shared / "sweeps"),
        "--shared-storage",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    job = done.stdout.splitlines()[0]
    deadline = time.monotonic() + 120
    while not sweep_runs(db, "stop-e2e")[0]:  # the driver has opened the sweep's parent run
        status = two_nodes.job_status(job)
        assert status in {"PENDING", "RUNNING"}, two_nodes.api(f"/api/jobs/{job}/logs").get("logs", "")[-3000:]
        assert time.monotonic() < deadline
        time.sleep(2)
    follow = subprocess.Popen(
        [str(BIN / "sweeper"), "logs", job, "--cluster", two_nodes.dashboard, "--follow"],
        cwd=tmp_path,
        env=two_nodes.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stopped = two_nodes.sweeper("stop", job, "--cluster", two_nodes.dashboard, cwd=tmp_path)
    assert stopped.returncode == 0 and "stop requested" in stopped.stdout
    assert two_nodes.wait_job(job, {"STOPPED", "SUCCEEDED", "FAILED"}, timeout=60) == "STOPPED"
    followed, _ = follow.communicate(timeout=60)  # --follow ends with the job
    assert follow.returncode == 0 and f"Running entrypoint for job {job}" in followed
    parents, children = sweep_runs(db, "stop-e2e")
    assert [p.info.status for p in parents] == ["KILLED"]
    assert parents[0].data.tags.get("sweeper.stopped_by") == "SIGTERM"  # stopped cleanly, not SIGKILLed
    assert "RUNNING" not in {c.info.status for c in children}


def test_a_wrong_token_is_refused_with_exit_2(two_nodes: Cluster, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("not-the-token")
    two_nodes.env["RAY_AUTH_TOKEN_PATH"], token = str(tmp_path / "token"), two_nodes.env.pop("RAY_AUTH_TOKEN")
    try:
        refused = two_nodes.sweeper("status", "--cluster", two_nodes.dashboard, cwd=tmp_path)
    finally:
        two_nodes.env["RAY_AUTH_TOKEN"] = token
        del two_nodes.env["RAY_AUTH_TOKEN_PATH"]
    assert refused.returncode == 2
    assert refused.stderr.startswith("sweeper: error: --cluster:") and "Invalid authentication token" in refused.stderr


# No cluster needed below: these fail before anything connects.


def cli_in_subprocess(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI in its own process, as a user would. In this test process it would import Ray
    under RAY_AUTH_MODE=token, which Ray caches at import: the session's embedded Ray (used by the
    other e2e tests) would then start in token mode too."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="unused")
    done = subprocess.run(
        [sys.executable, "-m", "sweeper.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stderr


def test_an_unreachable_cluster_url_exits_2_before_submitting(tmp_path: Path) -> None:
    write_sweep(tmp_path, "nowhere", tmp_path / "mlflow.db")
    (port,) = free_ports(1)
    code, error = cli_in_subprocess(
        ["launch", "nowhere.yaml", "--cluster", f"http://127.0.0.1:{port}", "--storage", str(tmp_path / "s")], tmp_path
    )
    assert code == 2
    assert error.startswith("sweeper: error: --cluster: no Ray dashboard answers at") and error.count("\n") == 1


def test_an_unreachable_address_exits_2_before_any_run(tmp_path: Path) -> None:
    write_sweep(tmp_path, "nowhere", tmp_path / "mlflow.db")
    (port,) = free_ports(1)
    code, error = cli_in_subprocess(["launch", "nowhere.yaml", "--address", f"127.0.0.1:{port}"], tmp_path)
    assert code == 2
    assert error.startswith("sweeper: error: --address: no Ray cluster answers at") and error.count("\n") == 1
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "sweeps").exists()


def test_cluster_needs_a_storage_and_tracking_the_cluster_can_keep(tmp_path: Path) -> None:
    write_sweep(tmp_path, "defaults", tmp_path / "mlflow.db")
    code, error = cli_in_subprocess(["launch", "defaults.yaml", "--cluster", "http://127.0.0.1:1"], tmp_path)
    assert code == 2 and "--storage: with --cluster" in error
    write_sweep(tmp_path, "defaults", tmp_path / "mlflow.db", tracking={"uri": None})
    code, error = cli_in_subprocess(
        ["launch", "defaults.yaml", "--cluster", "http://127.0.0.1:1", "--storage", "/srv/sweeps"], tmp_path
    )
    assert code == 2 and "tracking.uri: with --cluster" in error


# Last in the module: it kills the worker node, which the tests above need.
def test_a_worker_node_killed_mid_sweep_loses_no_trial(two_nodes: Cluster, tmp_path: Path) -> None:
    """SIGKILL to the worker node (its raylet and every trial process on it) while both trials
    train: Tune retries the lost trial from its last checkpoint on the head, and the sweep ends
    with every trial finished and every epoch logged once at least."""
    db = two_nodes.shared / "mlflow.db"
    sweep = write_sweep(tmp_path, "node-loss", db, train={"epochs": 4, "batch_size": 40, "lr": 1e-4}, max_retries=3)
    sweep_runs(db, "node-loss")  # the store exists before the driver's: polling it never races its migrations
    env = {k: v for k, v in two_nodes.env.items() if k != "RAY_AUTH_MODE"}
    driver = subprocess.Popen(
        [
            str(BIN / "sweeper"),
            "launch",
            str(sweep),
            "--address",
            two_nodes.gcs,
            "--storage",
            str(two_nodes.shared / "sweeps"),
            "--shared-storage",
        ],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = MlflowClient(f"sqlite:///{db}")
    deadline = time.monotonic() + 300
    while True:  # both trials running, one per node (one CPU each), each past its first epoch
        assert driver.poll() is None, driver.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the two trials never trained side by side"
        try:
            _, children = sweep_runs(db, "node-loss")
            if len(children) == 2 and all(client.get_metric_history(c.info.run_id, "id/acc") for c in children):
                break
        except Exception:  # noqa: BLE001 - the store is being created
            pass
        time.sleep(0.5)
    assert two_nodes.worker is not None
    os.killpg(two_nodes.worker.pid, signal.SIGKILL)
    two_nodes.worker.wait()
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output[-3000:]
    parents, children = sweep_runs(db, "node-loss")
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    for child in children:
        steps = {m.step for m in client.get_metric_history(child.info.run_id, "id/acc")}
        assert steps == {0, 1, 2, 3, 4}, (child.data.params["L"], steps)  # 4 epochs, then the summary
    # One trial was on the worker when it died: it finished on the head, so both did.
    assert trial_nodes(two_nodes.shared / "sweeps" / "node-loss") == {HEAD_IP}
