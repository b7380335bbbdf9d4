"""ASHA against the full grid on ablation-L: the best objective each finds, and the compute each spends.

The shipped ``search_spaces/ablation-L.yaml`` (5 values of L x 2 seeds), with ``--epochs`` epochs
per trial so that early stopping has rungs to act on, runs through ``sweeper launch`` with its FIFO
grid, then once per ``--asha`` variant with ``scheduler: {asha: {grace_period: G,
reduction_factor: RF}}``. Compute is counted in trial-epochs (the epochs each trial trained, read
back from MLflow) and in wall time.
Best objective: the best value of the sweep's objective (``val/acc``) among trials that trained
all epochs; a trial ASHA stopped early is not a result (it fine-tuned less).

Run: .venv/bin/python bench/bench_asha.py [--epochs 4] [--asha 1:4 [--asha 1:2 ...]]
     [--per-class N (smoke runs)]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from sweeper.tracking.results import load, load_history

SPACE = Path(__file__).resolve().parents[1] / "search_spaces" / "ablation-L.yaml"
# The sweep's own objective (val/acc since trials select on validation data).
METRIC = yaml.safe_load(SPACE.read_text())["objective"]["metric"]


def launch(folder: Path, name: str, epochs: int, scheduler: object, per_class: int | None) -> tuple[float, float, int]:
    """(best full-budget objective, wall seconds, trial-epochs) of one variant of ablation-L."""
    spec = yaml.safe_load(SPACE.read_text())
    # ASHA would stop reference trials early (refused), and the figures in BENCHMARKS.md were measured
    # on the demo's earlier data and evaluation settings, which these pin.
    spec.pop("reference", None)
    spec["report"].pop("delta", None)
    spec["data"]["source"] = {"shapes": {"per_class": {"train": 200, "test": 100}}}
    spec["train"]["eval_every"] = 1
    spec.update(name=name, scheduler=scheduler, tracking={"uri": f"sqlite:///{folder / 'mlflow.db'}"})
    spec["train"]["epochs"] = epochs
    if per_class:  # a smoke run of the harness itself, not a measurement
        spec["data"]["source"] = {"shapes": {"per_class": {"train": per_class, "val": per_class, "test": per_class}}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    start = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("sweeper")), "launch", str(path), "--storage", str(folder / "sweeps")],
        check=True,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    uri = spec["tracking"]["uri"]
    history = load_history(name, uri, metrics=["id/acc"])
    trained = history.groupby("run_id")["step"].max() + 1  # epochs each trial trained
    frame = load(name, uri).set_index("run_id")
    complete = trained[trained == epochs].index
    return float(frame.loc[complete, METRIC].max()), wall, int(trained.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--asha",
        action="append",
        default=None,
        metavar="GRACE:RF",
        help="an ASHA variant (grace period in epochs : reduction factor); repeatable, default 1:4",
    )
    parser.add_argument("--per-class", type=int, default=None, help="shrink the data (smoke runs only)")
    args = parser.parse_args()
    variants = [tuple(int(x) for x in v.split(":")) for v in (args.asha or ["1:4"])]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-asha-") as tmp:
        rows["grid (FIFO)"] = grid = launch(Path(tmp), "asha-bench-grid", args.epochs, "fifo", args.per_class)
        for grace, factor in variants:
            spec = {"asha": {"grace_period": grace, "reduction_factor": factor}}
            rows[f"ASHA (grace {grace}, rf {factor})"] = launch(
                Path(tmp), f"asha-bench-{grace}-{factor}", args.epochs, spec, args.per_class
            )
    print(f"ablation-L, 10 trials x {args.epochs} epochs, objective {METRIC}")
    print(
        "| scheduler | best objective (full-budget trials) | trial-epochs | wall s | best - grid's "
        "(target >= -0.01) | trial-epochs / grid's (target <= 0.50) | wall / grid's |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, (best, wall, epochs) in rows.items():
        print(
            f"| {label} | {best:.4f} | {epochs} | {wall:.0f} | {best - grid[0]:+.4f} | "
            f"{epochs / grid[2]:.2f} | {wall / grid[1]:.2f} |"
        )


if __name__ == "__main__":
    main()
