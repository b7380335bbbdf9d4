"""First-run figures: CLI start-up, a sweep's fixed cost, and the demo sweep's time.

In one run, on an idle machine:

- start-up: wall time of ``sweeper --help``, ``sweeper validate search_spaces/ablation-L.yaml``,
  ``sweeper methods`` and ``sweeper status`` (medians of ``--repeats`` fresh processes), each also
  as a ratio to ``python -c "import yaml, pydantic, rich"``, the floor any CLI built on those pays;
- fixed cost: a one-trial zero-shot sweep through ``sweeper launch``, split from MLflow's clock into
  the time from the command's start to the trial's start, and from the trial's end to the exit, and
  each of those into the driver's steps (timestamps from ``bench/startup_probe.py``, which runs the
  CLI with its functions timed) and the trial's (its MLflow run);
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
PROBE = str(Path(__file__).with_name("startup_probe.py"))


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
    print(f'| `python -c "import yaml, pydantic, rich"` | {floor:.2f} | 1.0 |')
    for label, command in commands.items():
        wall = timed(command, folder, repeats)
        print(f"| `{label}` | {wall:.2f} | {wall / floor:.1f} |", flush=True)


def launch(path: Path, folder: Path, probe_log: Path | None = None) -> tuple[float, float]:
    """(start, end) wall clock of ``sweeper launch path``, in seconds since the epoch; with
    ``probe_log``, the CLI runs under ``startup_probe.py``, which logs its steps there."""
    command = [sys.executable, PROBE, str(probe_log)] if probe_log else [CLI]
    start = time.time()
    subprocess.run(
        [*command, "launch", str(path), "--storage", str(folder / "sweeps")],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return start, time.time()


def trials(name: str, folder: Path):
    from sweeper.tracking import results

    return results.load(name, f"sqlite:///{folder / 'mlflow.db'}")


# The fixed cost's steps: (label, from, to), each a driver step's mark from startup_probe.py, or the
# trial run's start / end in MLflow; they tile the time before the trial and after it.
BEFORE_STEPS = [
    ("interpreter start and the CLI's imports", "launch", "cli.start"),
    ("the sweep file's checks (their imports included)", "cli.start", "import:sweeper.run.launch.start"),
    (
        "imports of Ray Tune, Optuna and MLflow (sweeper.run.launch)",
        "import:sweeper.run.launch.start",
        "import:sweeper.run.launch.end",
    ),
    ("the launch's checks, searcher and scheduler", "import:sweeper.run.launch.end", "mlflow_parent.start"),
    ("MLflow store, experiment and parent run", "mlflow_parent.start", "mlflow_parent.end"),
    ("resume state and trainable", "mlflow_parent.end", "ray_init.start"),
    ("ray.init", "ray_init.start", "ray_init.end"),
    ("the Tuner's construction", "ray_init.end", "tuner.end"),
    (
        "Tune's set-up, the trial worker's start and imports, until the trial's MLflow run starts",
        "tuner.end",
        "trial.start",
    ),
]
AFTER_STEPS = [
    ("Tune's wind-down (the trial's run ends -> fit returns)", "trial.end", "fit.end"),
    ("finish_sweep (closing the MLflow runs)", "fit.end", "finish_sweep.end"),
    ("the summary line, back out of the CLI", "finish_sweep.end", "ray_shutdown.start"),
    ("Ray's shutdown", "ray_shutdown.start", "ray_shutdown.end"),
    ("the interpreter's exit", "ray_shutdown.end", "end"),
]


def read_marks(log: Path) -> dict[str, float]:
    """First time of each ``<time> <step>`` line of a probe log."""
    marks: dict[str, float] = {}
    for line in log.read_text().splitlines():
        at, step = line.split(" ", 1)
        marks.setdefault(step, float(at))
    return marks


def fixed_cost(folder: Path) -> None:
    from mlflow.tracking import MlflowClient

    sweep = {
        "name": "fixed-cost",
        "method": "zeroshot",
        "data": {
            "source": {"shapes": {"per_class": {"train": 10, "val": 10, "test": 10}}},
            "id": "photo",
            "ood": ["sketch"],
        },
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }
    path = folder / "fixed-cost.yaml"
    path.write_text(yaml.safe_dump(sweep))
    launch(path, folder)  # once to render the tiny world, create the store and warm the file cache
    probe_log = folder / "steps.log"
    start, end = launch(path, folder, probe_log)
    run = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").get_run(trials("fixed-cost", folder)["run_id"][0])
    marks = {
        **read_marks(probe_log),
        "launch": start,
        "end": end,
        "trial.start": run.info.start_time / 1000,
        "trial.end": run.info.end_time / 1000,
    }
    before = marks["trial.start"] - start
    after = end - marks["trial.end"]
    print(
        f"\nfixed cost of a one-trial zero-shot sweep: {before:.1f} s from `sweeper launch` to the trial's start, "
        f"{after:.1f} s from its end to the exit, {before + after:.1f} s in all (the trial: "
        f"{marks['trial.end'] - marks['trial.start']:.1f} s)"
    )
    print("| step | s |")
    print("|---|---:|")
    for heading, steps in (("before the trial", BEFORE_STEPS), ("after the trial", AFTER_STEPS)):
        print(f"| **{heading}** | **{sum(marks[b] - marks[a] for _, a, b in steps):.2f}** |")
        for label, first, last in steps:
            print(f"| {label} | {marks[last] - marks[first]:.2f} |")


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

    from sweeper.run.launch import base_trial
    from sweeper.spec.loading import load
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
    print(
        f"\none demo Lipsum-FT trial (L = 8, seed 0) alone at 1 thread: {total:.1f} s "
        "(under cProfile; a demo trial also shares the machine with another)"
    )
    print("| phase | s | share |")
    print("|---|---:|---:|")
    for label, (path, function) in PHASES.items():
        seconds = sum(row[3] for (file, _, name), row in stats.items() if name == function and file.endswith(path))
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
