"""``sweeper ui``: the MLflow UI on the sweep store, bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys

from trainables.errors import InputError

LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("ui", help="serve the MLflow UI for the sweep store (127.0.0.1 by default)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: sqlite:///<cwd>/mlflow.db)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=5000, help="port (default 5000)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; the MLflow UI has no login, anyone who reaches it can read and delete runs",
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


def run(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.allow_remote:
        raise InputError(
            "--host",
            f"{args.host!r} is not a loopback address and the MLflow UI has no "
            "authentication; pass --allow-remote to bind it anyway",
        )
    from sweeper.tracking.uri import check_readable_uri, resolve_uri

    uri = check_readable_uri(resolve_uri(args.tracking_uri))
    process = subprocess.Popen(ui_command(uri, args.host, args.port))
    print(f"MLflow UI for {uri} at {url(args.host, args.port)} (Ctrl-C stops it)", flush=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # Forward the interrupt (a terminal already sent it to the child; a `kill -INT` did not),
        # give the server time to shut down, then insist.
        if process.poll() is None:
            process.send_signal(signal.SIGINT if os.name == "posix" else signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return 0
