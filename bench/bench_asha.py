"""ASHA against the full grid on ablation-L: the best objective each finds, and the compute each spends.

The shipped ``search_spaces/ablation-L.yaml`` (5 values of L x 2 seeds), with ``--epochs`` epochs
per trial so that early stopping has rungs to act on, runs twice through ``sweeper launch``: with
its FIFO grid, and with ``scheduler: {asha: {grace_period: 1, reduction_factor: 4}}``. Compute is
counted in trial-epochs (the epochs each trial trained, read back from MLflow) and in wall time.
Best objective: the best ``ood/avg_acc`` of a trial that trained all epochs; a trial ASHA stopped
early is not a result (its early-epoch OOD is higher only because it fine-tuned less).

Run: .venv/bin/python bench/bench_asha.py [--epochs 4] [--per-class N (smoke runs)]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from sweeper.results import load, load_history

SPACE = Path(__file__).resolve().parents[1] / "search_spaces" / "ablation-L.yaml"
METRIC = "ood/avg_acc"


def launch(folder: Path, name: str, epochs: int, scheduler: object, per_class: int | None) -> tuple[float, float, int]:
    """(best full-budget objective, wall seconds, trial-epochs) of one variant of ablation-L."""
    spec = yaml.safe_load(SPACE.read_text())
    spec.update(name=name, scheduler=scheduler, tracking={"uri": f"sqlite:///{folder / 'mlflow.db'}"})
    spec["train"]["epochs"] = epochs
    if per_class:  # a smoke run of the harness itself, not a measurement
        spec["data"]["source"] = {"shapes": {"per_class": {"train": per_class, "test": per_class}}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("sweeper")), "launch", str(path),
                    "--storage", str(folder / "sweeps")], check=True, cwd=folder,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    parser.add_argument("--per-class", type=int, default=None, help="shrink the data (smoke runs only)")
    args = parser.parse_args()
    asha_spec = {"asha": {"grace_period": 1, "reduction_factor": 4}}
    with tempfile.TemporaryDirectory(prefix="bench-asha-") as tmp:
        grid = launch(Path(tmp), "asha-bench-grid", args.epochs, "fifo", args.per_class)
        asha = launch(Path(tmp), "asha-bench-asha", args.epochs, asha_spec, args.per_class)
    print(f"ablation-L, 10 trials x {args.epochs} epochs, objective {METRIC}")
    print("| scheduler | best objective (full-budget trials) | trial-epochs | wall s |")
    print("|---|---:|---:|---:|")
    for label, (best, wall, epochs) in (("grid (FIFO)", grid), ("ASHA (grace 1, rf 4)", asha)):
        print(f"| {label} | {best:.4f} | {epochs} | {wall:.0f} |")
    print(f"\nASHA - grid best: {asha[0] - grid[0]:+.4f} (target >= -0.01); compute {asha[2] / grid[2]:.2f} of the "
          f"grid's trial-epochs, {asha[1] / grid[1]:.2f} of its wall time (target <= 0.50)")


if __name__ == "__main__":
    main()
