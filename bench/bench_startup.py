"""First-run figures: CLI start-up, a sweep's fixed cost, and the demo sweep's time.

In one run, on an idle machine:

- start-up: wall time of ``sweeper --help``, ``sweeper validate search_spaces/ablation-L.yaml``,
  ``sweeper methods`` and ``sweeper status`` (medians of ``--repeats`` fresh processes), each also
  as a ratio to ``python -c "import yaml, pydantic, rich"``, the floor any CLI built on those pays;
- fixed cost: a one-trial zero-shot sweep through ``sweeper launch``, split from MLflow's clock into
  the time from the command's start to the trial's start, and from the trial's end to the exit;
- the demo (``--demo``): ``sweeper launch search_spaces/ablation-L.yaml`` wall time, and each
  trial's duration by method from MLflow.

Run: .venv/bin/python bench/bench_startup.py [--repeats 3] [--demo]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("sweeper"))


def timed(command: list[str], cwd: Path, repeats: int) -> float:
    """Median wall seconds of ``command`` in fresh processes."""
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def start_up(folder: Path, repeats: int) -> None:
    floor = timed([sys.executable, "-c", "import yaml, pydantic, rich"], folder, repeats)
    commands = {
        "sweeper --help": [CLI, "--help"],
        "sweeper validate ablation-L.yaml": [CLI, "validate", str(ROOT / "search_spaces" / "ablation-L.yaml")],
        "sweeper methods": [CLI, "methods"],
        "sweeper status": [CLI, "status", "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"],
    }
    print(f"start-up, medians of {repeats} fresh processes")
    print("| command | wall s | ratio to the import floor |")
    print("|---|---:|---:|")
    print(f"| `python -c \"import yaml, pydantic, rich\"` | {floor:.2f} | 1.0 |")
    for label, command in commands.items():
        wall = timed(command, folder, repeats)
        print(f"| `{label}` | {wall:.2f} | {wall / floor:.1f} |", flush=True)


def launch(path: Path, folder: Path) -> tuple[float, float]:
    """(start, end) wall clock of ``sweeper launch path``, in seconds since the epoch."""
    start = time.time()
    subprocess.run([CLI, "launch", str(path), "--storage", str(folder / "sweeps")], cwd=folder, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return start, time.time()


def trials(name: str, folder: Path):
    from sweeper import results

    return results.load(name, f"sqlite:///{folder / 'mlflow.db'}")


def fixed_cost(folder: Path) -> None:
    from mlflow.tracking import MlflowClient

    sweep = {"name": "fixed-cost", "method": "zeroshot",
             "data": {"source": {"shapes": {"per_class": {"train": 10, "val": 10, "test": 10}}}, "id": "photo",
                      "ood": ["sketch"]},
             "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"}}
    path = folder / "fixed-cost.yaml"
    path.write_text(yaml.safe_dump(sweep))
    launch(path, folder)  # once to render the tiny world and warm the file cache
    start, end = launch(path, folder)
    run = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").get_run(trials("fixed-cost", folder)["run_id"][0])
    before = run.info.start_time / 1000 - start
    after = end - run.info.end_time / 1000
    print(f"\nfixed cost of a one-trial zero-shot sweep: {before:.1f} s from `sweeper launch` to the trial's start, "
          f"{after:.1f} s from its end to the exit, {before + after:.1f} s in all (the trial: "
          f"{(run.info.end_time - run.info.start_time) / 1000:.1f} s)")


def demo(folder: Path) -> None:
    spec = yaml.safe_load((ROOT / "search_spaces" / "ablation-L.yaml").read_text())
    spec["tracking"] = {"uri": f"sqlite:///{folder / 'mlflow.db'}"}
    path = folder / "ablation-L.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    start, end = launch(path, folder)
    frame = trials(spec["name"], folder)
    print(f"\ndemo sweep: {end - start:.0f} s from `sweeper launch` to its exit, {len(frame)} trials")
    print("| trials | n | mean trial s (MLflow run) |")
    print("|---|---:|---:|")
    label = frame["reference"].fillna("lipsum_ft (swept)")
    for name, durations in frame.groupby(label)["duration_s"]:
        print(f"| {name} | {len(durations)} | {durations.mean():.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--demo", action="store_true", help="also time the demo sweep (minutes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        folder = Path(tmp)
        fixed_cost(folder)  # first, so that status reads a store with a sweep in it
        start_up(folder, args.repeats)
        if args.demo:
            demo(folder)


if __name__ == "__main__":
    main()
