"""Real servers that tests start and stop themselves: an MLflow tracking server started with the
compose file's own command, a PostgreSQL cluster from the Debian packages, and moto's S3-compatible
server (the dev extra's ``moto[server]``), all on 127.0.0.1.

Each context manager stops only the processes it started and removes only the folders it made.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

COMPOSE_FILE = Path(__file__).resolve().parents[1] / "docker" / "docker-compose.yml"
# .ci/run sets this: there a missing service is a failure, not a skip.
REQUIRE_SERVICES = os.environ.get("SWEEPER_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compose_mlflow_command(host: str, port: int, artifacts: Path, workers: int = 1) -> list[str]:
    """The compose file's MLflow command, with this machine's address, port and folders."""
    command = list(yaml.safe_load(COMPOSE_FILE.read_text())["services"]["mlflow"]["command"])
    replace = {
        "--host": host,
        "--port": str(port),
        "--artifacts-destination": str(artifacts),
        "--workers": str(workers),
    }
    out = [str(Path(sys.executable).parent / "mlflow")]
    for arg in command[1:]:
        key = arg.split("=", 1)[0]
        out.append(f"{key}={replace[key]}" if key in replace and "=" in arg else arg)
    return out


@contextlib.contextmanager
def mlflow_server(tmp_path: Path, backend_store_uri: str | None = None, timeout_s: float = 90) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 with proxied artifacts under ``tmp_path/mlartifacts``;
    the backend store is sqlite unless ``backend_store_uri`` names another. Yields its URI."""
    port = free_port()
    server = start_mlflow_server(tmp_path, port, backend_store_uri, timeout_s)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(server)


def compose_workers() -> int:
    """The compose file's ``mlflow server --workers`` (how many processes serve a deployment)."""
    command = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["mlflow"]["command"]
    return next((int(arg.split("=", 1)[1]) for arg in command if arg.startswith("--workers=")), 1)


def start_mlflow_server(
    tmp_path: Path, port: int, backend_store_uri: str | None = None, timeout_s: float = 90, workers: int = 1
) -> subprocess.Popen:
    """Start the server on ``port`` (again, after an outage) and wait until it answers /health."""
    # Through MLflow's own variable, as in the compose file: no password in the process list.
    backend = backend_store_uri or f"sqlite:///{tmp_path / 'server.db'}"
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": backend}
    command = compose_mlflow_command("127.0.0.1", port, tmp_path / "mlartifacts", workers)
    log_path = tmp_path / "server.log"
    with log_path.open("a") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(server, f"http://127.0.0.1:{port}", log_path, timeout_s)
    except BaseException:
        stop_process_group(server)
        raise
    return server


def _wait_healthy(server: subprocess.Popen, uri: str, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if server.poll() is not None:
            raise AssertionError(f"mlflow server exited: {log_path.read_text()[-2000:]}")
        health = f"{uri}/health"  # the server this helper started on 127.0.0.1
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as response:  # noqa: S310
            if response.status == 200:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"mlflow server not healthy in {timeout_s}s: {log_path.read_text()[-2000:]}")
        time.sleep(0.5)


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the process's group (it was started in its own session), SIGKILL after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL server binaries (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@contextlib.contextmanager
def postgres_server(user: str = "mlflow", database: str = "mlflow", keep: Path | None = None) -> Iterator[str]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (TCP only, password auth) holding ``database``
    owned by ``user``; yields its SQLAlchemy URI for psycopg2. Skips when the server packages are
    missing, except under .ci/run, which installs them. With ``keep``, the cluster lives in that
    folder and outlives the call: a later call with the same folder starts it again, data and
    password included (bench/bench_scale.py caches its generated stores so)."""
    bindir = postgres_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries not found (Debian: apt-get install -y postgresql)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    # PostgreSQL refuses to run as root: as root, run it as the packages' `postgres` user, in a
    # folder outside pytest's root-only tmp tree.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = keep or Path(tempfile.mkdtemp(prefix="sweeper-pg-"))
    data, port = folder / "data", free_port()
    fresh = not (data / "PG_VERSION").exists()
    if fresh:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(data, ignore_errors=True)  # a cluster whose initdb did not finish
        (folder / "pwfile").write_text(secrets.token_hex(16))
    password = (folder / "pwfile").read_text().strip()
    if as_user:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(folder / "pwfile", "postgres", "postgres")

    def pg(tool: str, *args: str) -> None:
        env = {**os.environ, "PGPASSWORD": password}
        result = subprocess.run(
            [*as_user, str(bindir / tool), *args], capture_output=True, text=True, env=env, timeout=120, cwd=folder
        )
        if result.returncode != 0:
            log = folder / "server.log"
            raise AssertionError(
                f"{tool} failed: {result.stderr[-2000:]}{log.read_text()[-2000:] if log.exists() else ''}"
            )

    started = False
    try:
        if fresh:
            pg(
                "initdb",
                "-D",
                str(data),
                "-U",
                user,
                "--auth=scram-sha-256",
                f"--pwfile={folder / 'pwfile'}",
                "-E",
                "UTF8",
                "--no-sync",
            )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder} -c fsync=off"
        pg("pg_ctl", "-D", str(data), "-l", str(folder / "server.log"), "-o", options, "-w", "start")
        started = True
        if fresh:
            pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", user, database)
        yield f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{port}/{database}"
    finally:
        if started:
            pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


# Credentials for the moto server: it accepts any; the secret is recognisable so that tests can
# grep every output and record for it.
S3_KEY_ID = "AKIASWEEPERTEST"
S3_SECRET = "sweeper-test-secret-9f3b2c71"


@contextlib.contextmanager
def moto_server(timeout_s: float = 60) -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1 (objects in memory, gone when it stops); yields its
    endpoint URL, for ``AWS_ENDPOINT_URL``."""
    port, folder = free_port(), Path(tempfile.mkdtemp(prefix="sweeper-moto-"))
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while reachable_http(f"{endpoint}/moto-api/") is not None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"moto server not up: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield endpoint
    finally:
        stop_process_group(server)
        shutil.rmtree(folder, ignore_errors=True)


def reachable_http(url: str) -> str | None:
    """None when ``url`` (a local test server) answers at all, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310
            return None
    except urllib.error.HTTPError:
        return None  # it answered, with an error status
    except OSError as error:
        return str(error)


def s3_env(endpoint: str, credentials: bool = True) -> dict[str, str]:
    """The AWS variables that point pyarrow and boto3 at ``endpoint`` (with the test credentials)."""
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    return {**env, "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET} if credentials else env
