"""``sweeper ui``: the MLflow UI on the sweep store, bound to 127.0.0.1 unless told otherwise; with
``--optuna``, optuna-dashboard beside it on the store's Optuna storage (``sweeper.run.optuna_storage``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from trainables.errors import InputError

LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ui", help="serve the MLflow UI for the sweep store, and optuna-dashboard with --optuna (127.0.0.1 by default)"
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: sqlite:///<cwd>/mlflow.db)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=5000, help="port (default 5000)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; the MLflow UI (and optuna-dashboard) has no login, anyone who reaches "
        "it can read and delete runs (and studies)",
    )
    parser.add_argument(
        "--optuna",
        action="store_true",
        help="also serve optuna-dashboard on the store's Optuna studies (pip install optuna-dashboard)",
    )
    parser.add_argument("--optuna-port", type=_port, default=None, help="optuna-dashboard's port (default: --port + 1)")
    parser.add_argument(
        "--optuna-storage",
        default=None,
        metavar="URL",
        help="the studies' storage (a sweep's tracking.optuna_storage); needed when --tracking-uri is an "
        "MLflow server (default: beside the MLflow store)",
    )
    parser.set_defaults(run=run)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, not {port}")
    return port


def is_loopback(host: str) -> bool:
    """True for localhost names and 127.0.0.0/8, ::1."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public interface


def ui_command(uri: str, host: str, port: int) -> list[str]:
    """The argv that serves the MLflow UI (run without a shell; same interpreter as sweeper)."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def optuna_command(config: Path, host: str, port: int) -> list[str]:
    """The argv that serves optuna-dashboard. The storage URL is read from ``config`` (a TOML file
    only this user can read), so that a database password stays out of the process list."""
    script = Path(sys.executable).parent / "optuna-dashboard"
    found = str(script) if script.is_file() else shutil.which("optuna-dashboard") or str(script)
    return [found, "--host", host, "--port", str(port), "--from-config", str(config)]


@contextlib.contextmanager
def _dashboard_config(storage: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="sweeper-optuna-"))  # mode 0700
    try:
        path = folder / "optuna-dashboard.toml"
        # A JSON string is a valid TOML basic string (same escapes).
        path.write_text(f"[optuna_dashboard]\nstorage = {json.dumps(storage)}\n", encoding="utf-8")
        path.chmod(0o600)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _optuna_storage(args: argparse.Namespace, uri: str) -> str:
    """The Optuna storage URL to serve; InputError when there is none or optuna-dashboard is missing."""
    from sweeper.run.optuna_storage import check_storage_url, open_storage, sqlite_path, storage_url
    from sweeper.tracking.uri import redact_uri

    if importlib.util.find_spec("optuna_dashboard") is None:
        raise InputError(
            "--optuna", "optuna-dashboard is not installed; pip install optuna-dashboard (or the dev extra)"
        )
    field = "--optuna-storage" if args.optuna_storage else "--optuna"
    if args.optuna_storage:
        check_storage_url(args.optuna_storage, field)
    storage = storage_url(uri, args.optuna_storage)
    if storage is None:
        raise InputError(
            "--optuna-storage",
            f"the MLflow store {redact_uri(uri)} is a server, whose database sweeper cannot see; pass the "
            "sweeps' tracking.optuna_storage URL",
        )
    if storage.startswith("sqlite:") and not sqlite_path(storage).is_file():
        raise InputError(
            field,
            f"no Optuna storage at {sqlite_path(storage)}: launch a sweep with an Optuna searcher "
            "(tpe, random, ...) on this store first",
        )
    # Opened without creating anything: a PostgreSQL database without Optuna's schema is refused.
    found = open_storage(storage, field, create=False)
    try:
        found.get_all_studies()
    except Exception as error:  # noqa: BLE001 - tables that cannot be read mean: no studies there
        raise InputError(field, f"no Optuna studies at {redact_uri(storage)} ({type(error).__name__})") from None
    finally:
        found.remove_session()
    return storage


def run(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.allow_remote:
        raise InputError(
            "--host",
            f"{args.host!r} is not a loopback address and the MLflow UI "
            f"{'and optuna-dashboard have' if args.optuna else 'has'} no authentication; "
            "pass --allow-remote to bind it anyway",
        )
    from sweeper.tracking.uri import check_readable_uri, redact_uri, resolve_uri

    uri = check_readable_uri(resolve_uri(args.tracking_uri))
    if not args.optuna:
        for option in ("optuna_port", "optuna_storage"):
            if getattr(args, option) is not None:
                raise InputError(f"--{option.replace('_', '-')}", "only applies with --optuna")
        return _serve(
            [(ui_command(uri, args.host, args.port), f"MLflow UI for {redact_uri(uri)}", args.port)], args.host
        )
    storage = _optuna_storage(args, uri)
    optuna_port = args.optuna_port or (args.port + 1 if args.port < 65535 else args.port - 1)
    if optuna_port == args.port:
        raise InputError("--optuna-port", f"is --port ({args.port}); the two servers need a port each")

    with _dashboard_config(storage) as config:
        return _serve(
            [
                (ui_command(uri, args.host, args.port), f"MLflow UI for {redact_uri(uri)}", args.port),
                (
                    optuna_command(config, args.host, optuna_port),
                    f"optuna-dashboard for {redact_uri(storage)}",
                    optuna_port,
                ),
            ],
            args.host,
        )


def _serve(servers: list[tuple[list[str], str, int]], host: str) -> int:
    """Run every server until one ends (its exit code) or Ctrl-C (0); then stop them all."""
    _interrupt_on(signal.SIGTERM, signal.SIGHUP)  # a closed terminal or `kill` stops the servers too
    processes = []
    try:
        for command, what, port in servers:
            # Each server in a process group of its own, stopped as a group: `mlflow ui` runs
            # uvicorn and a job runner as children, which outlive a signal to `mlflow ui` alone.
            processes.append(subprocess.Popen(command, process_group=0))
            print(f"{what} at {url(host, port)}", flush=True)
        print("Ctrl-C stops " + ("it" if len(servers) == 1 else "both"), flush=True)
        while True:
            for process in processes:
                code = process.poll()
                if code is not None:
                    return code
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(processes)


def _interrupt_on(*signals: signal.Signals) -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for number in signals:
        with contextlib.suppress(ValueError):  # not the main thread: leave the handlers alone
            signal.signal(number, interrupt)


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader: a zombie would keep its group alive
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a member that is not ours any more (setuid): still alive
    return True


def _stop(processes: list[subprocess.Popen]) -> None:
    """Interrupt each server's group (as Ctrl-C in a terminal would), give them 10 s to shut down,
    then terminate, then kill what is left."""
    for sig, grace_s in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in processes if _group_alive(p)]
        if not alive:
            return
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace_s
        while any(_group_alive(p) for p in alive) and time.monotonic() < deadline:
            time.sleep(0.1)
