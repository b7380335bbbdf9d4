"""Many trials logging at once: N writer processes against one sqlite store and against an MLflow
server backed by PostgreSQL.

Each writer is a separate OS process (multiprocessing, spawn) that does what a trial's
``TrialRun`` does (it is ``TrialRun``, from tests/writers.py): create its child run under the
sweep's parent run, log ``--steps`` epochs of ``--metrics`` values with one ``log_batch`` each, and
close the run. For each N the writers start together (a barrier after their imports) and the
store is then read back. Recorded per N: writer errors (``database is locked`` or other), metric
values lost (every (run, key, step) counted back from the store), values stored twice, runs closed
FINISHED, wall time from the first write to the last, and throughput (values stored per second of
that wall time).

sqlite gets a fresh database file per N. The server runs once (the compose file's command, as in
tests/servers.py, on a throw-away PostgreSQL cluster) and each N logs to a new experiment; it
skips with a note when PostgreSQL's server packages are missing.

Run: .venv/bin/python bench/bench_many_writers.py [--writers 1,2,4,8,16,32] [--steps 200] [--metrics 10]
     [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the shared writer and servers

from writers import WritersResult, run_writers


@contextlib.contextmanager
def postgres_store(folder: Path) -> Iterator[str | None]:
    """The URI of an MLflow server on a fresh PostgreSQL, or None where PostgreSQL is missing."""
    from servers import mlflow_server, postgres_bindir, postgres_server

    if postgres_bindir() is None:
        yield None
        return
    with postgres_server() as database, mlflow_server(folder, database) as uri:
        yield uri


def row(store: str, result: WritersResult) -> str:
    kinds = "; ".join(f"{n} x {error}" for error, n in Counter(result.errors).most_common(3)) or "-"
    return (
        f"| {store} | {result.writers} | {result.wall_s:.1f} | {result.values_per_s:,.0f} | {len(result.errors)} | "
        f"{result.lost} | {result.duplicates} | {result.finished}/{result.writers} | {kinds} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", default="1,2,4,8,16,32", help="comma-separated writer counts")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres or both")
    args = parser.parse_args()
    counts = [int(n) for n in args.writers.split(",")]
    stores = args.stores.split(",")
    print(f"{args.steps} steps x {args.metrics} metrics per writer, one log_batch per step")
    print("| store | writers | wall s | values/s | errors | values lost | duplicates | runs FINISHED | errors seen |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="bench-writers-") as scratch:
        folder = Path(scratch)
        if "sqlite" in stores:
            for n in counts:
                uri = f"sqlite:///{folder / f'writers-{n}.db'}"
                print(row("sqlite", run_writers(uri, f"writers-{n}", n, args.steps, args.metrics)), flush=True)
        if "postgres" in stores:
            with postgres_store(folder) as uri:
                if uri is None:
                    print("postgres: PostgreSQL server packages not found (apt-get install postgresql); skipped")
                    return
                for n in counts:
                    result = run_writers(uri, f"writers-{n}", n, args.steps, args.metrics)
                    print(row("server + PostgreSQL", result), flush=True)


if __name__ == "__main__":
    main()
