"""A trial body that only sleeps and reports synthetic metrics: for measuring the harness, never for results.

``bench/bench_driver.py`` runs thousands of trials through the real ``sweeper launch`` path (Ray
Tune, the trainable, MLflow child runs, checkpoints, the live view) with this in place of
``trainables.loop.run``, so that what it measures is the cost of everything around a trial. The
driver hands it to the trials when ``SWEEPER_TRIAL_BODY=trainables.sleep_trial:run`` is set
(``sweeper.run.launch.sweep_trainable_for``). It has the loop's signature and its contract: one
report per epoch with a checkpoint, the selected summary after the last, and resume from a
checkpoint. The metrics are a seeded function of the trial's config, with the names a real trial
reports (``id/acc``, ``ood/avg_acc``, ``val/acc``, ...), so that tables and searchers work on them.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

from trainables.config import TrialConfig
from trainables.selection import BestEpoch

SLEEP_S = 0.1  # one trial's whole "training", spread over its epochs
STATE_FILE = "sleep_state.json"
DOMAINS = ("clipart", "sketch", "painting", "infograph")


def _rng(config: TrialConfig, epoch: int) -> random.Random:
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True) + f"/{epoch}"
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def synthetic_metrics(config: TrialConfig, epoch: int) -> dict[str, float]:
    """One epoch's metrics: accuracies that rise with the epoch, calibration errors, losses."""
    rng = _rng(config, epoch)
    rise = 0.05 * epoch
    metrics = {"train/loss": 2.0 / (1 + epoch) + rng.random() * 0.1}
    for split in ("id", "val"):
        metrics |= {f"{split}/acc": 0.5 + rise + rng.random() * 0.1, f"{split}/ece": 0.1 * rng.random()}
        metrics[f"{split}/nll"] = 1.5 - rise + rng.random() * 0.1
    for domain in DOMAINS:
        metrics |= {f"ood/{domain}/acc": 0.4 + rng.random() * 0.1, f"ood/{domain}/ece": 0.1 * rng.random()}
    metrics["ood/avg_acc"] = sum(metrics[f"ood/{d}/acc"] for d in DOMAINS) / len(DOMAINS)
    metrics["ood/avg_ece"] = sum(metrics[f"ood/{d}/ece"] for d in DOMAINS) / len(DOMAINS)
    return metrics


def run(
    config: TrialConfig | dict[str, Any],
    reporter: Any = None,
    resume_from: Path | None = None,
    artifacts: Any = None,
) -> dict[str, float]:
    """Sleep ``SLEEP_S`` over the trial's epochs, reporting each as ``trainables.loop.run`` does."""
    trial = config if isinstance(config, TrialConfig) else TrialConfig.model_validate(config)
    epochs = trial.train.epochs or 1
    best = BestEpoch(trial.selection)
    start = 0
    if resume_from is not None and (resume_from / STATE_FILE).is_file():
        state = json.loads((resume_from / STATE_FILE).read_text())
        start = state["epoch"] + 1
        best.load(state["best"])
    metrics: dict[str, float] = {}
    for epoch in range(start, epochs):
        time.sleep(SLEEP_S / epochs)
        metrics = synthetic_metrics(trial, epoch)
        best.offer(epoch, metrics, complete=True)
        last = epoch == epochs - 1
        summary = best.summary(metrics, {}) if last else None
        state = {"epoch": epoch, "best": best.state()}

        def checkpoint(folder: Path, state: dict[str, Any] = state) -> None:
            (folder / STATE_FILE).write_text(json.dumps(state))

        if reporter is not None:
            reporter(epoch, metrics, checkpoint, summary)
    return best.summary(metrics, {}) if metrics else {}
