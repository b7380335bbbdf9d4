"""A driver holding many trials (issue 22): the per-trial cost of Ray Tune, MLflow and Sweeper.

Sweeps of 100, 1,000 and 2,000 trials whose trials only sleep (0.1 s each, over 2 epochs) and
report synthetic metrics (``trainables.sleep_trial``), each run three ways in a fresh process,
side by side in one session:

- ``tune``: a bare Ray Tune sweep of the same grid: a function trainable that sleeps, reports
  each epoch with a checkpoint, and nothing else (``reuse_actors``, 1 CPU per trial, like Sweeper's);
- ``tune+mlflow``: the same, with Sweeper's MLflow tracking (``start_sweep``, a ``TrialRun`` per
  trial logging each epoch, ``finish_sweep``) on a sqlite store;
- ``sweeper``: ``sweeper launch FILE`` as a user runs it (spec checks, lease, Optuna-free grid, the
  live view, resume state, the real trainable), with ``SWEEPER_TRIAL_BODY`` naming the sleeping
  body in place of the training loop.

Each prints wall seconds, the machine's busy CPU seconds meanwhile (every Ray process included),
the driver process's own CPU seconds, and its peak memory (VmHWM). Per-trial cost is the wall
time less the sleeping a trial does itself, divided by the trial count:
``(wall - n * 0.1 s / 2 workers) / n``. The layers' shares are the differences between the
rows. A layer whose per-trial cost grows with the trial count grows faster than linearly.

Run: .venv/bin/python bench/bench_driver.py [--trials 100,1000,2000] [--variants tune,tune+mlflow,sweeper]
     [--json FILE]
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from trainables.sleep_trial import SLEEP_S  # noqa: E402  (after the path: the bench runs from a checkout)

EPOCHS = 2
WORKERS = os.cpu_count() or 1  # trials of 1 CPU each: as many at once as the machine has CPUs
VARIANTS = ("tune", "tune+mlflow", "sweeper")
# The driver's peak memory (VmHWM) and its own CPU seconds, printed at exit.
PEAK = """
import atexit, os, re, sys
def _peak():
    text = open("/proc/self/status").read()
    print("PEAK_KIB", re.search(r"VmHWM:\\s+(\\d+)", text).group(1), file=sys.stderr)
    print("DRIVER_CPU_S", os.times().user + os.times().system, file=sys.stderr)
atexit.register(_peak)
"""


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot (user, nice, system, irq, softirq)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(fields[k]) for k in (0, 1, 2, 5, 6))
    return busy / os.sysconf("SC_CLK_TCK")


def grid(trials: int) -> list[float]:
    """``trials / 2`` learning rates: with 2 seeds, a grid of ``trials`` points."""
    return [round(1e-5 * (1 + k), 8) for k in range(trials // 2)]


def sweep_file(folder: Path, trials: int) -> Path:
    path = folder / f"driver-{trials}.yaml"
    path.write_text(
        f"name: driver-{trials}\nmethod: ft\nmodel: zoo/tiny-clip-v1\ndata: {{id: photo, ood: [sketch]}}\n"
        f"train: {{epochs: {EPOCHS}}}\nsearch: {{lr: {{grid: {json.dumps(grid(trials))}}}}}\n"
        "seeds: [0, 1]\nsearcher: grid\nobjective: {metric: val/acc, mode: max}\n"
        f"tracking: {{uri: 'sqlite:///{folder}/mlflow.db'}}\n"
    )
    return path


def sleeping_trial(config: dict[str, Any], tracking: Any = None) -> None:
    """The bare Tune trainable (with ``tracking``, Sweeper's child run around it): the sleeping
    body's metrics, a report per epoch with a checkpoint."""
    from ray import tune

    from sweeper.tracking.runs import TrialRun
    from trainables.config import TrialConfig
    from trainables.sleep_trial import run

    trial = TrialConfig.model_validate(
        {
            "method": "ft",
            "model": "zoo/tiny-clip-v1",
            "seed": config["seed"],
            "data": {"id": "photo"},
            "train": {"epochs": EPOCHS},
        }
    )
    checkpoint = tune.get_checkpoint()
    resume = Path(checkpoint.to_directory()) if checkpoint is not None else None
    run_id = tune.get_context().get_trial_id()

    def report(epoch: int, metrics: dict, write: Any, summary: dict | None, tracked: Any = None) -> None:
        if tracked is not None:
            tracked.log(metrics, step=epoch)
            if summary is not None:
                tracked.log(summary, step=epoch + 1)
        if summary is not None:  # as Sweeper's trainable: no checkpoint with the last report
            tune.report({**metrics, **summary})
            return
        with tempfile.TemporaryDirectory() as folder:
            write(Path(folder))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    if tracking is None:
        run(trial, report, resume_from=resume)
        return
    with TrialRun(tracking, run_id, f"ft lr={config['lr']} seed={config['seed']}", dict(config), {}) as tracked:
        run(trial, lambda *a: report(*a, tracked=tracked), resume_from=resume)


def bare_sweep(trials: int, folder: Path, tracked: bool) -> None:
    """Run the ``tune`` or ``tune+mlflow`` sweep in this process."""
    import logging

    import ray
    from ray import tune

    from sweeper.tracking.runs import finish_sweep, start_sweep

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    tracking = start_sweep(f"driver-{trials}", None, f"sqlite:///{folder}/mlflow.db", {}) if tracked else None
    space = {"lr": tune.grid_search(grid(trials)), "seed": tune.grid_search([0, 1])}
    trainable = tune.with_resources(tune.with_parameters(sleeping_trial, tracking=tracking), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(metric="val/acc", mode="max", reuse_actors=True),
        run_config=tune.RunConfig(
            name=f"driver-{trials}",
            storage_path=str(folder / "sweeps"),
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )
    results = tuner.fit()
    if tracking is not None:
        finish_sweep(tracking, {r.metrics["trial_id"]: "FINISHED" for r in results if r.metrics})
    assert results.num_errors == 0 and len(results) == trials, (results.num_errors, len(results))


def measure(variant: str, trials: int, timeout: float) -> dict[str, Any]:
    """One sweep in a fresh process: wall and machine CPU seconds, the driver's peak memory."""
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_worker_niceness": "0"}
        if variant == "sweeper":
            env["SWEEPER_TRIAL_BODY"] = "trainables.sleep_trial:run"
            code = PEAK + "from sweeper.cli import main\nsys.exit(main())"
            command = [
                sys.executable,
                "-c",
                code,
                "launch",
                str(sweep_file(folder, trials)),
                "--storage",
                str(folder / "sweeps"),
            ]
        else:
            call = f"bench_driver.bare_sweep({trials}, pathlib.Path({str(folder)!r}), {variant != 'tune'})"
            code = PEAK + "import pathlib, bench_driver\n" + call
            env["PYTHONPATH"] = f"{ROOT / 'bench'}:{ROOT}"
            command = [sys.executable, "-c", code]
        busy, start = machine_busy_s(), time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
        wall, cpu = time.perf_counter() - start, machine_busy_s() - busy
        if done.returncode != 0:
            raise SystemExit(f"{variant} at {trials} trials failed ({done.returncode}):\n{done.stderr[-3000:]}")
        peak = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK_KIB")]
        driver = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("DRIVER_CPU_S")]
    sleeping = trials * SLEEP_S / WORKERS
    return {
        "variant": variant,
        "trials": trials,
        "wall_s": wall,
        "cpu_s": cpu,
        "per_trial_ms": 1000 * (wall - sleeping) / trials,
        "cpu_per_trial_ms": 1000 * cpu / trials,
        "driver_cpu_per_trial_ms": 1000 * float(driver[-1]) / trials if driver else float("nan"),
        "peak_mib": int(peak[-1]) / 1024 if peak else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", default="100,1000,2000")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    print(f"trials sleep {SLEEP_S} s over {EPOCHS} epochs, {WORKERS} at once (1 CPU each)")
    columns = ["variant", "trials", "wall s", "per trial ms (less sleep)", "machine CPU ms / trial"]
    print("| " + " | ".join([*columns, "of which driver", "driver peak MiB"]) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for trials in [int(t) for t in args.trials.split(",")]:
        for variant in args.variants.split(","):
            row = measure(variant, trials, args.timeout)
            rows.append(row)
            print(
                f"| {variant} | {trials:,} | {row['wall_s']:.1f} | {row['per_trial_ms']:.0f} | "
                f"{row['cpu_per_trial_ms']:.0f} | {row['driver_cpu_per_trial_ms']:.0f} | {row['peak_mib']:.0f} |",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
