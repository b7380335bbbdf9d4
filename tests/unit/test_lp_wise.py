"""LP, LP-FT and WiSE-FT on the tiny zoo model and a few shapes images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainables.evaluation import eval_batches
from trainables.loop import TrialConfig, build_method, run
from trainables.methods.base import Method
from trainables.methods.wise_ft import WiseParams, format_alpha

DATA = {"source": {"shapes": {"per_class": {"train": 4, "val": 1, "test": 5}}}, "id": "photo", "ood": ["sketch"]}
CPU = torch.device("cpu")


def build(method: str, params: dict | None = None, seed: int = 0) -> tuple[Method, list]:
    config = TrialConfig.model_validate({"method": method, "data": DATA, "params": params or {}, "seed": seed})
    built, data = build_method(config, CPU)
    split = data["source"].split("photo", "train")
    return built, list(eval_batches(split, built.context.bundle, 20))


def optimise(method: Method, batches: list, steps: int = 3, lr: float = 1e-3) -> None:
    optimizer = torch.optim.AdamW(method.parameter_groups(), lr=lr, weight_decay=0.1)
    method.train()
    for step in range(steps):
        images, labels = batches[step % len(batches)]
        loss = method.training_loss(images, labels)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


@torch.no_grad()
def logits(method: Method, images: torch.Tensor) -> torch.Tensor:
    method.eval()
    return method.logits(images)


def test_wise_endpoints_are_zero_shot_and_fine_tuned_and_the_final_mix_is_restored() -> None:
    wise, batches = build("wise_ft")
    images = batches[0][0][:8]
    zero_shot = logits(wise, images)
    optimise(wise, batches)
    fine_tuned = logits(wise, images)
    assert (fine_tuned - zero_shot).abs().max() > 1e-2  # training really moved the model
    assert not any(k.startswith("_zero_shot") for k in wise.state_dict())
    assert set(wise.trainable_state()) == {n for n, p in wise.named_parameters() if p.requires_grad}

    wise.after_training()
    final = {n: p.detach().clone() for n, p in wise.named_parameters() if p.requires_grad}
    half = logits(wise, images)
    assert (half - zero_shot).abs().max() > 1e-3 and (half - fine_tuned).abs().max() > 1e-3
    wise.interpolate(0.0)
    torch.testing.assert_close(logits(wise, images), zero_shot, atol=1e-5, rtol=0)
    wise.interpolate(1.0)
    torch.testing.assert_close(logits(wise, images), fine_tuned, atol=1e-5, rtol=0)

    seen = []
    metrics = wise.posthoc_metrics(lambda m: seen.append(1) or {"id/acc": 1.0})
    assert len(seen) == 11 and metrics["wise/0.0/id/acc"] == 1.0 and "wise/1.0/id/acc" in metrics
    for name, parameter in wise.named_parameters():
        if name in final:
            assert torch.equal(parameter, final[name]), name


def test_wise_params_and_alpha_names() -> None:
    assert (WiseParams().alpha, WiseParams().curve_step) == (0.5, 0.1)
    for bad in ({"alpha": 1.5}, {"curve_step": 0.3}, {"curve_step": 0}, {"beta": 1}):
        with pytest.raises(ValueError):
            WiseParams(**bad)
    assert [format_alpha(k / 10) for k in (0, 3, 10)] == ["0.0", "0.3", "1.0"]
    assert format_alpha(0.25) == "0.25"


def test_wise_through_the_loop_logs_the_curve_and_resumes(tmp_path: Path) -> None:
    config = {"method": "wise_ft", "data": DATA, "train": {"epochs": 2, "batch_size": 20}}
    files: dict[str, str] = {}
    saved: dict[int, Path] = {}

    def keep(epoch, metrics, checkpoint):
        saved[epoch] = tmp_path / f"epoch_{epoch}"
        saved[epoch].mkdir()
        checkpoint(saved[epoch])

    metrics = run(config, keep, artifacts=lambda name, text: files.__setitem__(name, text))
    alphas = [f"{k / 10:.1f}" for k in range(11)]
    for alpha in alphas:
        for name in ("id/acc", "id/ece", "id/nll", "ood/avg_acc", "ood/avg_ece", "ood/sketch/acc"):
            assert f"wise/{alpha}/{name}" in metrics
    assert metrics["wise/0.5/id/acc"] == pytest.approx(metrics["id/acc"])
    rows = files["wise_curve.csv"].strip().splitlines()
    assert rows[0] == "alpha,id_acc,ood_avg_acc,id_ece,id_nll,ood_avg_ece"
    assert [r.split(",")[0] for r in rows[1:]] == alphas
    assert files["wise_curve.md"].count("\n| ") == 12  # header and 11 rows

    resumed = run(config, resume_from=saved[0])
    assert resumed["wise/0.0/id/acc"] == pytest.approx(metrics["wise/0.0/id/acc"])
    assert resumed["wise/1.0/id/acc"] == pytest.approx(metrics["wise/1.0/id/acc"])
    assert resumed["id/nll"] == pytest.approx(metrics["id/nll"], rel=1e-4)


def test_lp_trains_only_the_head_and_leaves_the_image_tower_bitwise_unchanged() -> None:
    lp, batches = build("lp")
    tower = {k: v.clone() for k, v in lp.model.visual.state_dict().items()}
    head = lp.head.detach().clone()
    optimise(lp, batches, lr=1e-2)
    assert all(torch.equal(v, tower[k]) for k, v in lp.model.visual.state_dict().items())
    assert all(p.grad is None for p in lp.model.visual.parameters())
    assert not torch.equal(lp.head, head)
    assert lp.parameter_metrics()["params/trainable"] == head.numel()
    assert not lp.train().model.visual.training
    zeros, _ = build("lp", {"init": "zeros"})
    assert torch.count_nonzero(zeros.head) == 0


def test_lp_ft_prepare_fits_the_head_deterministically_from_zero_shot() -> None:
    first, batches = build("lp_ft", {"lp_epochs": 3, "lp_batch_size": 8}, seed=3)
    zero_shot = first.head.detach().clone()
    tower = {k: v.clone() for k, v in first.model.visual.state_dict().items()}
    first.prepare(iter(batches))
    assert (first.head - zero_shot).abs().max() > 1e-3
    assert all(torch.equal(v, tower[k]) for k, v in first.model.visual.state_dict().items())
    assert all(p.requires_grad for p in first.model.visual.parameters())  # stage 2 trains the tower
    accuracy = first.posthoc_metrics(lambda m: {})["lp/train_acc"]
    assert 0.0 <= accuracy <= 1.0 and "lp_train_acc" in first.trainable_state()

    second, batches = build("lp_ft", {"lp_epochs": 3, "lp_batch_size": 8}, seed=3)
    second.prepare(iter(batches))
    assert torch.equal(first.head, second.head)
