"""Best-epoch selection on validation data, and the summary a trial reports (no Ray)."""

from __future__ import annotations

import math

import pytest

from trainables.loop import run
from trainables.selection import BestEpoch, Selection, selection_for

TINY = {
    "source": {"shapes": {"per_class": {"train": 12, "val": 6, "test": 8}}},
    "id": "photo",
    "ood": ["clipart"],
    "ood_val": ["sketch"],
}


def test_the_best_validation_epoch_is_reported_and_the_last_kept_as_last() -> None:
    best = BestEpoch(Selection())
    best.offer(0, {"val/acc": 0.50, "id/acc": 0.40, "ood/avg_acc": 0.70}, complete=True)
    best.offer(1, {"val/acc": 0.60, "id/acc": 0.45, "ood/avg_acc": 0.60}, complete=True)
    last = {"val/acc": 0.55, "id/acc": 0.50, "ood/avg_acc": 0.50}
    best.offer(2, last, complete=True)
    summary = best.summary(last, {"wise/0.5/id/acc": 0.9})
    assert summary["best_epoch"] == 1 and summary["val/acc"] == 0.60 and summary["id/acc"] == 0.45
    assert summary["last/val/acc"] == 0.55 and summary["last/id/acc"] == 0.50
    assert summary["wise/0.5/id/acc"] == 0.9  # end-of-training metrics pass through
    assert "last/wise/0.5/id/acc" not in summary


def test_selection_skips_incomplete_epochs_prefers_the_earliest_tie_and_honours_min() -> None:
    best = BestEpoch(Selection(metric="val/nll", mode="min"))
    best.offer(0, {"val/nll": 0.9}, complete=True)
    best.offer(1, {"val/nll": 0.1}, complete=False)  # ID-only evaluation (eval_every): lacks OOD
    best.offer(2, {"val/nll": 0.5}, complete=True)
    best.offer(3, {"val/nll": 0.5}, complete=True)
    best.offer(4, {"val/nll": math.nan}, complete=True)
    assert best.epoch == 2
    restored = BestEpoch(Selection(metric="val/nll", mode="min"))
    restored.load(best.state())
    assert restored.summary({"val/nll": 1.0}, {}) == best.summary({"val/nll": 1.0}, {})


def test_a_test_metric_objective_selects_on_val_acc_and_a_validation_one_on_itself() -> None:
    assert selection_for("ood/avg_acc") == Selection(metric="val/acc", mode="max")
    assert selection_for(None) == Selection()
    assert selection_for("oodval/avg_acc") == Selection(metric="oodval/avg_acc", mode="max")
    assert selection_for("val/nll", "min") == Selection(metric="val/nll", mode="min")


def test_a_trial_logs_validation_every_epoch_and_reports_its_selected_epoch() -> None:
    seen: dict[int, dict[str, float]] = {}
    summaries: list[dict[str, float]] = []

    def keep(epoch, metrics, checkpoint, summary=None) -> None:
        seen[epoch] = metrics
        if summary is not None:
            summaries.append(summary)

    config = {"method": "ft", "data": TINY, "train": {"epochs": 3, "batch_size": 30, "lr": 3e-3}, "seed": 2}
    result = run(config, keep)
    assert summaries == [result] and sorted(seen) == [0, 1, 2]
    for metrics in seen.values():
        assert {"val/acc", "val/nll", "val/ece", "oodval/sketch/acc", "oodval/avg_acc"} <= set(metrics)
        assert "ood/sketch/acc" not in metrics  # a held-out validation domain is never a test domain
        assert metrics["ood/avg_acc"] == pytest.approx(metrics["ood/clipart/acc"])
    chosen = int(result["best_epoch"])
    assert seen[chosen]["val/acc"] == max(m["val/acc"] for m in seen.values())
    for name in ("id/acc", "ood/avg_acc", "val/acc", "train/loss"):
        assert result[name] == pytest.approx(seen[chosen][name])
        assert result[f"last/{name}"] == pytest.approx(seen[2][name])


def test_a_test_metric_objective_is_refused_unless_the_file_declares_oracle_selection() -> None:
    from sweeper.spec.loading import from_mapping
    from trainables.errors import InputError

    # wise_ft logs the wise/ curve, so only oracle selection is in question
    sweep = {"name": "o", "method": "wise_ft", "data": {"id": "photo", "ood": ["sketch"]}}
    for metric in ("ood/avg_acc", "id/acc", "ood/sketch/acc", "zs/colour/acc", "wise/0.5/ood/avg_acc", "last/id/acc"):
        with pytest.raises(InputError) as refused:
            from_mapping({**sweep, "objective": {"metric": metric}})
        assert refused.value.where == "<sweep>: objective" and "oracle: true" in refused.value.message
        spec = from_mapping({**sweep, "objective": {"metric": metric, "oracle": True}})
        assert spec.primary_objective.oracle
    for metric in ("val/acc", "val/nll", "wise/0.5/val/acc", "train/loss"):
        assert not from_mapping({**sweep, "objective": {"metric": metric}}).objective.oracle
    held_out = {**sweep, "data": {"id": "photo", "ood": ["sketch"], "ood_val": ["painting"]}}
    assert from_mapping({**held_out, "objective": {"metric": "oodval/painting/acc"}}).data.ood_val == ["painting"]
