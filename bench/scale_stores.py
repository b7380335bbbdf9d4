"""The generated stores of bench/bench_scale.py, cached between runs (generating 10,000 trials takes
about six minutes on sqlite, ten on PostgreSQL): one sqlite file per trial count, and one
PostgreSQL cluster holding every trial count, served by a real ``mlflow server`` (tests/servers.py:
the compose file's command, with its two workers). The same PostgreSQL database is also read
directly (``postgresql+psycopg2://...``), as ``--tracking-uri`` allows.

A store is reused while its marker file names the same shape and the same generator (a hash of
tests/scale_store.py); otherwise it is written again. Each sweep is named ``scale-<trials>``.
The PostgreSQL store is written with MLflow's client straight to the database (the rows a server
would write, without an HTTP round trip per call).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the generator and the servers

import scale_store
from scale_store import Shape

# PostgreSQL runs as the `postgres` user when the bench runs as root: its folder must be outside a
# home folder only root can enter.
DEFAULT_CACHE = Path("/var/tmp/sweeper-bench-scale")


def sweep_name(trials: int) -> str:
    return f"scale-{trials}"


def _marker(shape: Shape) -> str:
    generator = hashlib.sha256(Path(scale_store.__file__).read_bytes()).hexdigest()[:12]
    return json.dumps({"shape": asdict(shape), "generator": generator}, sort_keys=True)


def _generate(uri: str, shape: Shape, what: str, artifacts: Path | None = None) -> float:
    """Write the sweep into ``uri``; returns the seconds it took."""
    from mlflow.tracking import MlflowClient

    name = sweep_name(shape.trials)
    if artifacts is not None:  # else MLflow would put the parent's sweep.yaml under ./mlruns
        client = MlflowClient(uri)
        if client.get_experiment_by_name(name) is None:
            client.create_experiment(name, artifact_location=str(artifacts))
    start = time.monotonic()

    def progress(k: int) -> None:
        if k % 1000 == 0:
            print(f"  {what}: {k}/{shape.trials} trials written, {time.monotonic() - start:.0f} s", flush=True)

    scale_store.generate(uri, name, shape, progress)
    return time.monotonic() - start


def sqlite_store(cache: Path, shape: Shape) -> str:
    """The URI of the cached sqlite store of ``shape``, generated first if needed."""
    path, marker = cache / f"sqlite-{shape.trials}.db", cache / f"sqlite-{shape.trials}.json"
    if path.exists() and marker.exists() and marker.read_text() == _marker(shape):
        return f"sqlite:///{path}"
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f"sqlite-{shape.trials}.partial.db"
    partial.unlink(missing_ok=True)
    print(f"generating sqlite store of {shape.trials} trials in {path} ...", flush=True)
    took = _generate(f"sqlite:///{partial}", shape, "sqlite")
    partial.replace(path)  # only a finished store is ever reused
    marker.write_text(_marker(shape))
    print(f"  done in {took:.0f} s", flush=True)
    return f"sqlite:///{path}"


@contextlib.contextmanager
def server_store(cache: Path, shapes: list[Shape]) -> Iterator[tuple[str, int, str]]:
    """A tracking server on the cached PostgreSQL store holding every shape (generated first where
    needed); yields its URI, its process id (to count its CPU time) and the database's URI."""
    from servers import compose_workers, postgres_server, start_mlflow_server, stop_process_group

    folder = cache / "postgres"
    with postgres_server(keep=folder) as database:
        for shape in shapes:
            marker = cache / f"postgres-{shape.trials}.json"
            if marker.exists() and marker.read_text() == _marker(shape):
                continue
            # A stale or half-written launch stays in the database; the newest launch is the one read.
            print(f"generating PostgreSQL store of {shape.trials} trials ...", flush=True)
            took = _generate(database, shape, "postgres", artifacts=cache / "server" / "mlartifacts")
            marker.write_text(_marker(shape))
            print(f"  done in {took:.0f} s", flush=True)
        from servers import free_port

        scratch = cache / "server"
        scratch.mkdir(parents=True, exist_ok=True)
        port = free_port()
        # as many workers as the compose file deploys (2): requests in flight are served at once
        server = start_mlflow_server(scratch, port, database, timeout_s=180, workers=compose_workers())
        try:
            yield f"http://127.0.0.1:{port}", server.pid, database
        finally:
            stop_process_group(server)


def have_postgres() -> bool:
    from servers import postgres_bindir

    return postgres_bindir() is not None


def wipe(cache: Path) -> None:
    """Forget every generated store (``--fresh``)."""
    shutil.rmtree(cache, ignore_errors=True)
