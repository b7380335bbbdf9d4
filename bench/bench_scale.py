"""Reading a large sweep back (issue 22): each read of the budget table on generated stores of one
sweep of 1,000 and 10,000 trials, on sqlite, on an MLflow server backed by PostgreSQL, and on that
PostgreSQL database read directly.

The stores (bench/scale_stores.py, cached between runs) hold what a real TPE sweep's runs carry:
the parent run of ``start_sweep`` and per trial the provenance tags, the flat params, 21 metrics
x 4 epochs and the summary step (the selected epoch's 21 values, 21 ``last/*`` and
``best_epoch``), written with MLflow's client. Each call runs in a fresh process, as a user would
run it: ``results.load`` and ``results.history`` (every metric) time the call after the import;
``sweeper status NAME``, ``sweeper report NAME`` and ``sweeper report NAME --html DIR`` time the
whole command. Per call: wall seconds, CPU seconds (of the call, or of the command's process, plus
the server's meanwhile), peak memory (VmHWM). The server is warmed up by one untimed pass first:
its first requests after a start pay for its own imports.

Run: .venv/bin/python bench/bench_scale.py [--trials 1000,10000] [--stores sqlite,server,postgres]
     [--per-run] [--code DIR] [--cache DIR] [--fresh] [--timeout S] [--json FILE]
``--per-run`` measures the per-run reads (``bulk=False``) for comparison; ``--code DIR`` runs the
calls with another checkout's ``sweeper`` (e.g. the commit before the bulk reads).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import scale_stores
from scale_stores import DEFAULT_CACHE, Shape, server_store, sqlite_store, sweep_name

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = {"results.load": 15, "results.history": 60, "sweeper status NAME": 5, "sweeper report NAME": 20}
BUDGETS["sweeper report NAME --html DIR"] = 90
CALLS = list(BUDGETS)
# Peak memory: VmHWM of the process itself, printed at exit. (os.wait4's ru_maxrss would count the
# bench's own memory, which the child inherits when it is forked, before its exec.)
PEAK = """
import atexit, re, sys
def _peak():
    text = open("/proc/self/status").read()
    print("PEAK_KIB", re.search(r"VmHWM:\\s+(\\d+)", text).group(1), file=sys.stderr)
atexit.register(_peak)
"""
PROBE = (
    PEAK
    + """
import json, sys, time
start = time.perf_counter()
from sweeper.tracking import results
imported, cpu = time.perf_counter(), time.process_time()
kind, name, uri, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
frame = (results.load if kind == "load" else results.load_history)(name, uri, **options)
done, cpu = time.perf_counter(), time.process_time() - cpu
print(json.dumps({"import_s": imported - start, "call_s": done - imported, "call_cpu_s": cpu, "rows": len(frame)}))
"""
)
CLI = PEAK + "from sweeper.cli import main\nsys.exit(main())"


def tree_cpu(root: int | None) -> float:
    """CPU seconds (user + system) of process ``root`` and its live descendants, from /proc."""
    if root is None:
        return 0.0
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += [child for child, (parent, _) in stats.items() if parent == pid]
    return total


def measure(command: list[str], code: Path, cwd: Path, server: int | None, timeout: float) -> dict:
    """Run ``command``; wall and CPU seconds, peak RSS (MiB), the server's CPU meanwhile, its output."""
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "160"}
    server_before, start = tree_cpu(server), time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        # Reaped here, not by Popen: os.wait4 gives the process's own CPU time and peak memory.
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                process.kill()
                os.wait4(process.pid, 0)
                return {"wall_s": None, "error": f"over {timeout:.0f} s"}
            time.sleep(0.02)
        process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait for it again
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    peak = [line.split()[1] for line in stderr.splitlines() if line.startswith("PEAK_KIB ")]
    result = {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mib": int(peak[-1]) / 1024 if peak else None,
        "server_cpu_s": tree_cpu(server) - server_before if server else None,
    }
    if process.returncode != 0:
        lines = [line for line in (stderr or stdout).strip().splitlines() if not line.startswith("PEAK_KIB ")]
        result["error"] = (lines or ["failed"])[-1]
    result["stdout"] = stdout
    return result


def run_calls(
    uri: str, trials: int, args: argparse.Namespace, server: int | None, quiet: bool = False
) -> dict[str, dict]:
    name, python = sweep_name(trials), sys.executable
    options = json.dumps({"bulk": False} if args.per_run else {})
    found = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        work = Path(scratch)
        commands = {
            "results.load": [python, "-c", PROBE, "load", name, uri, options],
            "results.history": [python, "-c", PROBE, "history", name, uri, options],
            "sweeper status NAME": [python, "-c", CLI, "status", name, "--tracking-uri", uri],
            "sweeper report NAME": [python, "-c", CLI, "report", name, "--tracking-uri", uri, "--out", "t"],
            "sweeper report NAME --html DIR": [
                *[python, "-c", CLI, "report", name, "--tracking-uri", uri, "--out", "t", "--html", "h"]
            ],
        }
        for call, command in commands.items():
            result = measure(command, args.code, work, server, args.timeout)
            if call.startswith("results.") and "error" not in result:
                result.update(json.loads(result["stdout"].strip().splitlines()[-1]))
            result.pop("stdout", None)
            found[call] = result
            if not quiet:
                print(f"  {call}: {_cell(result, call)}  ({json.dumps(result)})", flush=True)
    return found


def _cell(result: dict, call: str) -> str:
    """Wall seconds (results.*: of the call; commands: all of it), then CPU seconds of the
    process and of the server."""
    if result.get("error"):
        return f"failed: {result['error']}"
    seconds = result.get("call_s", result["wall_s"])
    cpu = result.get("call_cpu_s", result["cpu_s"]) + (result.get("server_cpu_s") or 0)
    return f"{seconds:.1f} ({cpu:.1f})"


def table(found: dict[str, dict[str, dict]]) -> str:
    columns = list(found)
    lines = [
        "| call | " + " | ".join(columns) + " | budget at 10,000 |",
        "|---|" + "---:|" * (len(columns) + 1),
    ]
    for call in CALLS:
        cells = [_cell(found[c][call], call) for c in columns]
        lines.append(f"| `{call}` s | " + " | ".join(cells) + f" | <= {BUDGETS[call]} |")
    for call in CALLS:
        peaks = [f"{found[c][call].get('peak_mib') or 0:.0f}" for c in columns]
        lines.append(f"| peak memory of `{call}`, MiB | " + " | ".join(peaks) + " | stated |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", default="1000,10000", help="comma-separated trial counts")
    parser.add_argument(
        "--stores",
        default="sqlite,server,postgres",
        help="any of sqlite, server (an mlflow server on PostgreSQL), postgres (its database read directly)",
    )
    parser.add_argument("--per-run", action="store_true", help="read with bulk=False (the per-run calls)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose sweeper runs the calls")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where generated stores are kept")
    parser.add_argument("--fresh", action="store_true", help="generate the stores again")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one call may take")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    args = parser.parse_args()
    counts = [int(n) for n in args.trials.split(",")]
    shapes = [Shape(trials=n) for n in counts]
    if args.fresh:
        scale_stores.wipe(args.cache)
    found: dict[str, dict[str, dict]] = {}
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    if "sqlite" in args.stores:
        for shape in shapes:
            uri = sqlite_store(args.cache, shape)
            print(f"sqlite, {shape.trials} trials ({uri}):", flush=True)
            found[f"sqlite {shape.trials:,}"] = run_calls(uri, shape.trials, args, None)
    served = [kind for kind in ("server", "postgres") if kind in args.stores]
    if served and not scale_stores.have_postgres():
        print("server, postgres: PostgreSQL server packages not found (apt-get install postgresql); skipped")
    elif served:
        with server_store(args.cache, shapes) as (uri, pid, database):
            if "server" in served:
                # The server's first requests after a start import its handlers' modules (18 s here):
                # one untimed pass over the smallest sweep, so that no measured call pays for them.
                print(f"server ({uri}): warming up on {sweep_name(counts[0])}", flush=True)
                run_calls(uri, counts[0], args, pid, quiet=True)
                for shape in shapes:
                    print(f"server, {shape.trials} trials ({uri}):", flush=True)
                    found[f"server {shape.trials:,}"] = run_calls(uri, shape.trials, args, pid)
            if "postgres" in served:  # the server's database, read directly
                for shape in shapes:
                    print(f"postgres, {shape.trials} trials (the server's database, read directly):", flush=True)
                    found[f"postgres {shape.trials:,}"] = run_calls(database, shape.trials, args, None)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    mode = "per-run reads (bulk=False)" if args.per_run else "reads as the code does them"
    print(f"\n{mode}, code {args.code}; wall seconds (results.*: the call after its import; commands: all of")
    print("it), in brackets the CPU seconds of the call (the process) and of the server together")
    print(table(found))
    if args.json:
        args.json.write_text(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
