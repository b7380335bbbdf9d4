"""The generic loop, one trial without Ray: zero-shot reproduces the zoo card; training is
deterministic, reports every epoch, and resumes from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainables.config import TrainConfig
from trainables.data.shapes_world import DOMAINS
from trainables.loop import run
from trainables.models import zoo
from trainables.optim import make_schedule, warmup_cosine
from trainables.run import main as run_main

TINY = {
    "source": {"shapes": {"per_class": {"train": 12, "val": 8, "test": 8}}},
    "id": "photo",
    "ood": ["clipart", "sketch"],
}


def test_zero_shot_method_reproduces_the_zoo_zero_shot_table() -> None:
    card = zoo.read_card("tiny-clip-v1")["evaluation"]["zero_shot"]
    metrics = run({"method": "zeroshot", "data": {"id": "photo", "ood": list(DOMAINS[1:])}})
    assert metrics["id/acc"] == pytest.approx(card["photo"], abs=1e-3)
    for domain in DOMAINS[1:]:
        assert metrics[f"ood/{domain}/acc"] == pytest.approx(card[domain], abs=1e-3)
    assert metrics["ood/avg_acc"] == pytest.approx(sum(card[d] for d in DOMAINS[1:]) / 4, abs=1e-3)
    assert 0 < metrics["id/ece"] < 1 and metrics["id/nll"] > 0


def test_schedule_warms_up_linearly_then_decays_to_zero() -> None:
    factor = warmup_cosine(total_steps=100, warmup=10)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.5, abs=0.02) and factor(99) < 0.01


def test_constant_warmup_then_cosine_as_in_the_dassl_configs() -> None:
    # CoOp / KgCoOp: SGD, one warm-up epoch at a constant 1e-5, then cosine from lr 2e-3.
    import torch

    train = TrainConfig(epochs=4, optimizer="sgd", lr=2e-3, warmup_epochs=1, warmup_lr=1e-5)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=train.lr, momentum=0.9)
    schedule = make_schedule(optimizer, train, steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[:10] == pytest.approx([1e-5] * 10)  # the whole first epoch
    assert lrs[10] == pytest.approx(2e-3) and lrs[25] == pytest.approx(1e-3, rel=0.1) and lrs[39] < 2e-5


def test_training_is_deterministic_and_reports_each_epoch() -> None:
    config = {
        "method": "lipsum_ft",
        "data": TINY,
        "train": {"epochs": 2, "batch_size": 40},
        "params": {"M": 4, "L": 3},
        "seed": 5,
    }
    seen: list[tuple[int, dict]] = []
    first = run(config, lambda epoch, metrics, checkpoint, summary=None: seen.append((epoch, metrics)))
    second = run(config)
    assert [e for e, _ in seen] == [0, 1]
    assert first == second
    assert {"train/loss", "train/ce", "train/reg", "train/lr", "ood/avg_ece"} <= set(first)


def test_resuming_from_a_checkpoint_gives_the_same_result(tmp_path: Path) -> None:
    config = {"method": "ft", "data": TINY, "train": {"epochs": 2, "batch_size": 40}, "seed": 1}
    saved: dict[int, Path] = {}

    def keep(epoch, metrics, checkpoint, summary=None):
        saved[epoch] = tmp_path / f"epoch_{epoch}"
        saved[epoch].mkdir()
        checkpoint(saved[epoch])

    straight = run(config, keep)
    resumed = run(config, resume_from=saved[0])
    assert resumed["id/acc"] == pytest.approx(straight["id/acc"])
    assert resumed["train/loss"] == pytest.approx(straight["train/loss"], rel=1e-4)


def test_trainables_run_cli_runs_a_trial_file(tmp_path: Path, capsys) -> None:
    trial = tmp_path / "trial.yaml"
    trial.write_text(
        "method: ft\n"
        "data: {source: {shapes: {per_class: {train: 8, val: 4, test: 4}}}, id: photo, ood: [sketch]}\n"
        "train: {epochs: 1, batch_size: 40}\n"
    )
    assert run_main([str(trial), "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    assert '"epoch": 0' in capsys.readouterr().out
    assert (tmp_path / "ck" / "epoch_0" / "state.pt").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: ft\ndata: {id: photo}\ntrain: {epochs: 0}\n")
    assert run_main([str(bad)]) == 2
    assert "train.epochs" in capsys.readouterr().err


def test_epoch_loss_terms_summed_on_the_device_equal_the_per_step_values(monkeypatch) -> None:
    """train/* are summed as tensors and read once per epoch (no GPU sync per step); they must
    equal the mean of the per-step values read one by one."""
    from trainables import registry

    method_cls = registry.get("lipsum_ft")
    real_loss, steps = method_cls.training_loss, []

    def recording_loss(self, images, labels):
        terms = real_loss(self, images, labels)
        steps.append({name: value.item() for name, value in terms.items()})
        return terms

    monkeypatch.setattr(method_cls, "training_loss", recording_loss)
    metrics = run(
        {
            "method": "lipsum_ft",
            "data": TINY,
            "train": {"epochs": 1, "batch_size": 40},
            "params": {"M": 4, "L": 3},
            "seed": 2,
        }
    )
    assert len(steps) == 3  # 120 images, batches of 40
    for name in ("loss", "ce", "reg"):
        assert metrics[f"train/{name}"] == pytest.approx(sum(s[name] for s in steps) / len(steps), rel=1e-6)


def test_a_diverging_loss_fails_the_trial_before_the_epoch_is_reported() -> None:
    from trainables.errors import NonFiniteLoss

    reported: list[int] = []
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss in epoch 0: .*train/loss=(nan|inf)"):
        run(
            {"method": "ft", "data": TINY, "train": {"epochs": 2, "batch_size": 40, "lr": 1e30}},
            lambda epoch, metrics, checkpoint, summary=None: reported.append(epoch),
        )
    assert reported == []  # no metrics, no checkpoint of the diverged weights


def test_eval_every_skips_ood_between_evaluations_and_changes_no_final_metric() -> None:
    config = {"method": "ft", "data": TINY, "train": {"epochs": 3, "batch_size": 40}, "seed": 4}
    seen: dict[int, dict] = {}
    sparse = run(
        {**config, "train": {**config["train"], "eval_every": 2}},
        lambda epoch, metrics, checkpoint, summary=None: seen.__setitem__(epoch, metrics),
    )
    assert "id/acc" in seen[0] and not any(k.startswith(("ood/", "zs/")) for k in seen[0])
    assert "ood/avg_acc" in seen[1] and "zs/colour/acc" in seen[1]  # the 2nd epoch: an evaluation
    assert "ood/avg_acc" in seen[2]  # the last epoch always evaluates everything
    assert sparse == pytest.approx(run(config))  # evaluating less changes no trained weight


def test_retention_false_skips_the_zero_shot_tasks_and_changes_nothing_else() -> None:
    config = {"method": "ft", "data": TINY, "train": {"epochs": 1, "batch_size": 40}, "seed": 2}
    full = run(config)
    lean = run({**config, "data": {**TINY, "retention": False}})
    assert any(k.startswith("zs/") for k in full) and not any(k.startswith("zs/") for k in lean)
    assert lean == pytest.approx({k: v for k, v in full.items() if not k.startswith(("zs/", "last/zs/"))})


def test_bf16_precision_trains_under_cpu_autocast_and_stays_close_to_fp32() -> None:
    config = {"method": "ft", "data": TINY, "train": {"epochs": 1, "batch_size": 40}, "seed": 3}
    fp32 = run(config)
    bf16 = run({**config, "train": {**config["train"], "precision": "bf16"}})
    assert bf16["train/loss"] != fp32["train/loss"]  # it did run in bf16 ...
    assert bf16["train/loss"] == pytest.approx(fp32["train/loss"], rel=0.05)  # ... and still trains the same model
    assert 0 <= bf16["id/acc"] <= 1 and bf16["id/nll"] > 0
