"""First-run figures: CLI start-up, a sweep's fixed cost, and the demo sweep's time.

In one run, on an idle machine:

- start-up: wall time of ``sweeper --help``, ``sweeper validate search_spaces/ablation-L.yaml``,
  ``sweeper methods`` and ``sweeper status`` (medians of ``--repeats`` fresh processes), each also
  as a ratio to ``python -c "import yaml, pydantic, rich"``, the floor any CLI built on those pays;
- fixed cost: a one-trial zero-shot sweep through ``sweeper launch``, split from MLflow's clock into
  the time from the command's start to the trial's start, and from the trial's end to the exit;
- the demo (``--demo``): ``sweeper launch search_spaces/ablation-L.yaml`` wall time, each trial's
  duration by method from MLflow, and where one of its Lipsum-FT trials spends its time: the same
  trial run by ``trainables.loop.run`` in this process at 1 thread under cProfile, split into
  loading, the training step's parts, evaluation and the rest.

Run: .venv/bin/python bench/bench_startup.py [--repeats 3] [--demo]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
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


# Trial phases by the function that does each, (module path suffix, function name); cumulative time.
PHASES = {
    "load the model and data, build the method": ("trainables/loop.py", "build_method"),
    "training step": ("trainables/loop.py", "train_step"),
    "  the loss (forward passes)": ("trainables/methods/lipsum_ft.py", "training_loss"),
    "    the frozen zero-shot image forward": ("trainables/methods/_anchored.py", "zero_shot_features"),
    "    the random-text encoding": ("trainables/methods/lipsum_ft.py", "random_text_features"),
    "  backward": ("torch/_tensor.py", "backward"),
    "data loading and augmentation": ("torch/utils/data/dataloader.py", "__next__"),
    "evaluation: validation split(s)": ("trainables/evaluation.py", "validate"),
    "evaluation: test splits": ("trainables/evaluation.py", "evaluate"),
    "evaluation: zero-shot retention tasks": ("trainables/evaluation.py", "retention_metrics"),
}


def breakdown(spec_path: Path) -> None:
    """Where one of the demo's Lipsum-FT trials (L = 8, seed 0) spends its time, in this process."""
    import torch

    from sweeper.launch import base_trial
    from sweeper.spec import load
    from trainables import loop

    torch.set_num_threads(1)  # as each demo trial runs (resources.cpu: 1)
    spec = load(spec_path)
    config = {**base_trial(spec), "params": {**spec.method_keys({}), "L": 8}, "seed": 0, "device": "cpu"}
    loop.run({**config, "train": {**config["train"], "epochs": 1}})  # render and cache the data first
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    loop.run(config)
    profile.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]  # the documented dict of pstats
    print(f"\none demo Lipsum-FT trial (L = 8, seed 0) alone at 1 thread: {total:.1f} s "
          "(under cProfile; a demo trial also shares the machine with another)")
    print("| phase | s | share |")
    print("|---|---:|---:|")
    for label, (path, function) in PHASES.items():
        seconds = sum(row[3] for (file, _, name), row in stats.items()
                      if name == function and file.endswith(path))
        print(f"| {label} | {seconds:.1f} | {seconds / total:.0%} |")


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
            breakdown(ROOT / "search_spaces" / "ablation-L.yaml")


if __name__ == "__main__":
    main()
