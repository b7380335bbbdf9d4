"""LP, LP-FT and WiSE-FT on the tiny zoo model and a few shapes images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from trainables.config import TrialConfig
from trainables.evaluation import eval_batches
from trainables.loop import build_method, run
from trainables.methods._linear_probe import c_grid, cached_features, fit_linear_head, fit_logistic_head, head_accuracy
from trainables.methods.base import Method
from trainables.methods.lp_ft import LPFTParams
from trainables.methods.wise_ft import WiseParams, format_alpha
from trainables.posthoc import wise_curve

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
    assert wise.interpolation is not None
    metrics, _ = wise_curve(
        wise, wise.interpolation, wise.wise_curve_alphas(), lambda m: seen.append(1) or {"id/acc": 1.0}, wise.wise_alpha
    )
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

    def keep(epoch, metrics, checkpoint, summary=None):
        saved[epoch] = tmp_path / f"epoch_{epoch}"
        saved[epoch].mkdir()
        checkpoint(saved[epoch])

    metrics = run(config, keep, artifacts=lambda name, text: files.__setitem__(name, text))
    alphas = [f"{k / 10:.1f}" for k in range(11)]
    for alpha in alphas:
        for name in ("id/acc", "id/ece", "id/nll", "ood/avg_acc", "ood/avg_ece", "ood/sketch/acc"):
            assert f"wise/{alpha}/{name}" in metrics
    # The trial reports the interpolated model (alpha 0.5) of the last epoch, not an FT epoch.
    assert metrics["best_epoch"] == 1
    assert metrics["wise/0.5/id/acc"] == pytest.approx(metrics["id/acc"]) == pytest.approx(metrics["last/id/acc"])
    best_val = max(metrics[f"wise/{a}/val/acc"] for a in alphas)
    assert metrics[f"wise/{metrics['wise/alpha_val']:.1f}/val/acc"] == best_val
    rows = files["wise_curve.csv"].strip().splitlines()
    assert rows[0] == "alpha,val_acc,id_acc,ood_avg_acc,id_ece,id_nll,ood_avg_ece"
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
    first, batches = build("lp_ft", {"lp_solver": "adamw", "lp_epochs": 3, "lp_batch_size": 8}, seed=3)
    zero_shot = first.head.detach().clone()
    tower = {k: v.clone() for k, v in first.model.visual.state_dict().items()}
    first.prepare(iter(batches))
    assert (first.head - zero_shot).abs().max() > 1e-3
    assert all(torch.equal(v, tower[k]) for k, v in first.model.visual.state_dict().items())
    assert all(p.requires_grad for p in first.model.visual.parameters())  # stage 2 trains the tower
    accuracy = first.posthoc_metrics(lambda m: {})["lp/train_acc"]
    assert 0.0 <= accuracy <= 1.0 and "lp_train_acc" in first.trainable_state()

    second, batches = build("lp_ft", {"lp_solver": "adamw", "lp_epochs": 3, "lp_batch_size": 8}, seed=3)
    second.prepare(iter(batches))
    assert torch.equal(first.head, second.head)


def _probe_data(train: int, val: int) -> tuple[Method, list, list]:
    """An lp_ft method with its photo train and ID validation batches (un-augmented)."""
    data = {"source": {"shapes": {"per_class": {"train": train, "val": val, "test": 1}}}, "id": "photo"}
    config = TrialConfig.model_validate({"method": "lp_ft", "data": data, "seed": 0})
    method, built = build_method(config, CPU)
    source, bundle = built["source"], method.context.bundle
    return (
        method,
        list(eval_batches(source.split("photo", "train"), bundle, 256)),
        list(eval_batches(source.split("photo", "val"), bundle, 256)),
    )


def test_lbfgs_logistic_regression_beats_the_adamw_lp_stage_on_validation() -> None:
    # 150 photo images per class: at 50 the two stages were within noise of each other (and
    # both near zero-shot); from about 100 on the logistic regression leads by 3-5 points.
    method, train, validation = _probe_data(train=150, val=30)
    p = LPFTParams()
    assert p.lp_solver == "lbfgs"
    features, held_out = cached_features(method, train), cached_features(method, validation)
    fit = fit_logistic_head(
        *features,
        method.head.shape[1],
        method.scale,
        validation=held_out,
        grid=c_grid(p.lp_C_min, p.lp_C_max, p.lp_C_steps),
        fixed_C=p.lp_C,
    )
    adamw = fit_linear_head(
        *features,
        method.head,
        method.scale,
        epochs=10,
        lr=0.01,
        weight_decay=1e-4,
        batch_size=256,
        generator=torch.Generator().manual_seed(0),
    )
    assert fit.val_acc == pytest.approx(head_accuracy(*held_out, fit.head))
    assert fit.val_acc > head_accuracy(*held_out, adamw) + 0.02, (fit, head_accuracy(*held_out, adamw))
    assert fit.C in c_grid(p.lp_C_min, p.lp_C_max, p.lp_C_steps)


def test_lbfgs_head_reproduces_the_sklearn_decision_function_and_falls_back_to_a_fixed_c() -> None:
    method, train, _validation = _probe_data(train=6, val=2)
    method.prepare(train)  # no validation split: the fixed C
    metrics = method.posthoc_metrics(lambda m: {})
    assert metrics["lp/C"] == LPFTParams().lp_C and "lp/val_acc" not in metrics
    features, labels = cached_features(method, train)
    x = features.double().numpy()  # the stage fits in float64 too
    reference = LogisticRegression(C=LPFTParams().lp_C, fit_intercept=False, max_iter=1000).fit(x, labels.numpy())
    with torch.no_grad():  # s * f @ W is the decision function: W = coef.T / s, no intercept
        logits = method.logits_from_features(features)
    torch.testing.assert_close(logits, torch.from_numpy(reference.decision_function(x)).float(), rtol=0, atol=1e-3)
    assert metrics["lp/train_acc"] == pytest.approx(reference.score(x, labels.numpy()))
    with pytest.raises(ValueError, match="exceeds"):
        LPFTParams(lp_C_min=10.0, lp_C_max=1.0)


def test_lp_lbfgs_fits_in_prepare_and_the_loop_leaves_the_head_unchanged() -> None:
    lp, batches = build("lp", {"solver": "lbfgs"})
    zero_shot = lp.head.detach().clone()
    lp.prepare(batches[:1], batches[1:])
    fitted = lp.head.detach().clone()
    assert (fitted - zero_shot).abs().max() > 1e-3
    assert {"lp/train_acc", "lp/val_acc", "lp/C"} <= set(lp.posthoc_metrics(lambda m: {}))
    optimizer = torch.optim.AdamW(lp.parameter_groups(), lr=1e-2, weight_decay=0.1)  # as the loop builds it
    lp.train()
    for images, labels in batches:
        loss = lp.training_loss(images, labels)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.equal(lp.head, fitted)
    assert {"lp_train_acc", "lp_val_acc", "lp_C"} <= set(lp.trainable_state())
