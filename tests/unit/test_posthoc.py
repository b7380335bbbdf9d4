"""Post-hoc WiSE for every interpolable method, and effective robustness against the trial's own
zero-shot point: hand interpolations of the weights, the endpoints, and hand-computed metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from trainables import zeroshot_point
from trainables.config import TrialConfig, WiseConfig
from trainables.data.sources import open_source
from trainables.errors import InputError
from trainables.evaluation import eval_batches
from trainables.loop import _evaluate, build_method, run
from trainables.methods.base import Method
from trainables.models.heads import zero_shot_head
from trainables.posthoc import format_alpha, wise_curve, wise_plan
from trainables.zeroshot_point import zero_shot_point

torch.set_num_threads(1)
CPU = torch.device("cpu")
SOURCE = {"shapes": {"per_class": {"train": 4, "val": 1, "test": 4}}}
DATA = {"source": SOURCE, "id": "photo", "ood": ["sketch"], "ood_val": ["clipart"], "retention": False}
TRAIN = {"epochs": 1, "batch_size": 20}


def built(method: str, params: dict | None = None) -> tuple[Method, dict, TrialConfig]:
    config = TrialConfig.model_validate({"method": method, "data": DATA, "params": params or {}, "train": TRAIN})
    made, data = build_method(config, CPU)
    return made, data, config


def optimise(method: Method, data: dict, steps: int = 3, lr: float = 1e-2) -> None:
    batches = list(eval_batches(data["source"].split("photo", "train"), method.context.bundle, 20))
    optimizer = torch.optim.AdamW(method.parameter_groups(), lr=lr, weight_decay=0.0)
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


def snapshot(method: Method) -> dict[str, torch.Tensor]:
    return {n: t.detach().clone() for n, t in method.zero_shot_weights().items()}


@pytest.mark.parametrize("name", ["ft", "lipsum_ft"])
def test_posthoc_wise_is_the_hand_interpolation_and_restores_the_trained_weights(name: str) -> None:
    method, data, config = built(name)
    plan = wise_plan(method, WiseConfig(alphas=[0.0, 0.3, 1.0]), list(data["eval"]))
    assert plan is not None and method.interpolation is not None
    zs = snapshot(method)
    assert not any(k.startswith("interpolation") for k in method.state_dict())  # theta_zs: no checkpoint
    point = zero_shot_point(method, lambda m: _evaluate(m, data, config, CPU), data["eval"]["photo"])
    data["zeroshot"] = point  # as the loop does: evaluations now add effective robustness
    optimise(method, data)
    method.after_training()
    trained = snapshot(method)
    assert max((trained[k] - zs[k]).abs().max().item() for k in zs) > 1e-3  # training moved it

    seen: dict[float, dict[str, torch.Tensor]] = {}
    results: dict[float, dict[str, float]] = {}

    def evaluate(m: Method) -> dict[str, float]:
        alpha = [0.0, 0.3, 1.0][len(seen)]
        seen[alpha] = snapshot(m)
        results[alpha] = _evaluate(m, data, config, CPU)
        return results[alpha]

    metrics, rows = wise_curve(method, method.interpolation, plan.alphas, evaluate, method.wise_alpha)
    for key in zs:
        torch.testing.assert_close(seen[0.3][key], 0.7 * zs[key] + 0.3 * trained[key], rtol=1e-6, atol=1e-7)
        assert torch.equal(seen[0.0][key], zs[key]) and torch.equal(seen[1.0][key], trained[key])
    after = snapshot(method)
    assert all(torch.equal(after[k], trained[k]) for k in trained)  # back at alpha = 1
    for key in ("id/acc", "ood/avg_acc", "val/acc", "oodval/avg_acc", "id/nll"):
        assert metrics[f"wise/0.0/{key}"] == pytest.approx(point.metrics[key], abs=1e-6)
    assert metrics["wise/0.0/robustness/effective"] == pytest.approx(0.0, abs=1e-6)
    assert [r["alpha"] for r in rows] == [0.0, 0.3, 1.0]
    best = max((metrics[f"wise/{format_alpha(a)}/val/acc"], a) for a in (0.0, 0.3, 1.0))
    assert metrics["wise/alpha_val"] == best[1]


def test_lp_ft_interpolates_towards_the_zero_shot_head_not_the_probe() -> None:
    method, data, _ = built("lp_ft")
    wise_plan(method, WiseConfig(alphas=[0.0, 1.0]), list(data["eval"]))
    batches = eval_batches(data["source"].split("photo", "train"), method.context.bundle, 20)
    method.prepare(batches, eval_batches(data["val"], method.context.bundle, 20))
    bundle, context = method.context.bundle, method.context
    head = zero_shot_head(bundle.model, bundle.tokenizer, context.classnames, context.templates)
    assert method.interpolation is not None
    torch.testing.assert_close(method.interpolation.zero_shot["head"], head)
    assert (method.head - head).abs().max() > 1e-3  # the LP stage moved the trained head


@pytest.mark.parametrize("name", ["lora", "lorsu"])
def test_merged_low_rank_methods_interpolate_from_zero_shot_to_trained(name: str) -> None:
    torch.manual_seed(0)
    method, data, _ = built(name)
    wise_plan(method, WiseConfig(alphas=[0.0, 1.0]), list(data["eval"]))
    images = next(iter(eval_batches(data["eval"]["photo"], method.context.bundle, 12)))[0]
    zero_shot = logits(method, images)
    if name == "lorsu":
        method.prepare(eval_batches(data["source"].split("photo", "train"), method.context.bundle, 20))
    optimise(method, data)
    method.after_training()  # merged: the weights are in the zero-shot space now
    trained = logits(method, images)
    assert (trained - zero_shot).abs().max() > 1e-3
    assert method.interpolation is not None
    method.interpolation.apply(method, 0.0)
    torch.testing.assert_close(logits(method, images), zero_shot, rtol=0, atol=1e-4)
    method.interpolation.apply(method, 1.0)
    torch.testing.assert_close(logits(method, images), trained, rtol=0, atol=0)


def test_posthoc_wise_is_refused_for_weights_outside_the_zero_shot_space_and_unknown_domains() -> None:
    method, data, config = built("coop")
    with pytest.raises(InputError, match=r"posthoc\.wise:"):
        wise_plan(method, WiseConfig(alphas=[0.5]), list(data["eval"]))
    # A frozen-tower method with the zero-shot image features inherits the point's encoded splits.
    zero_shot_point(method, lambda m: _evaluate(m, data, config, CPU), data["eval"]["photo"])
    assert {"eval/photo/40", "eval/sketch/40", "val/photo/10"} <= set(method.eval_feature_cache)
    method, data, _ = built("ft")
    with pytest.raises(InputError, match=r"posthoc\.wise\.domains"):
        wise_plan(method, WiseConfig(alphas=[0.5], domains=["painting"]), list(data["eval"]))
    assert wise_plan(method, None, list(data["eval"])) is None and method.interpolation is None


def line(id_acc: float, zs_id: float, zs_ood: float, chance: float) -> float:
    # The zero-shot line through (chance, chance) and the zero-shot point, written out by hand.
    slope = (zs_ood - chance) / (zs_id - chance)
    return chance + slope * (id_acc - chance)


def test_a_trial_logs_its_zero_shot_point_effective_robustness_and_the_wise_curve() -> None:
    files: dict[str, str] = {}
    wise = {"alphas": [0.0, 0.5, 1.0], "domains": ["photo"]}
    config = {"method": "ft", "data": DATA, "train": TRAIN, "posthoc": {"wise": wise}}
    metrics = run(config, artifacts=lambda name, text: files.__setitem__(name, text))
    chance = 1 / len(open_source(SOURCE).classnames)
    zs = {k: metrics[f"zeroshot/{k}"] for k in ("id/acc", "ood/avg_acc", "val/acc", "oodval/avg_acc")}
    expected = metrics["ood/avg_acc"] - line(metrics["id/acc"], zs["id/acc"], zs["ood/avg_acc"], chance)
    assert metrics["robustness/effective"] == pytest.approx(expected, abs=1e-9)
    expected_val = metrics["oodval/avg_acc"] - line(metrics["val/acc"], zs["val/acc"], zs["oodval/avg_acc"], chance)
    assert metrics["robustness/effective_val"] == pytest.approx(expected_val, abs=1e-9)
    # The curve: validation at every alpha, the test domains restricted to the ID one.
    assert {"wise/0.5/val/acc", "wise/0.5/oodval/avg_acc", "wise/0.5/robustness/effective_val"} <= set(metrics)
    assert "wise/0.5/id/acc" in metrics and "wise/0.5/ood/avg_acc" not in metrics
    assert metrics["wise/0.0/id/acc"] == pytest.approx(zs["id/acc"])
    assert metrics["wise/1.0/id/acc"] == pytest.approx(metrics["id/acc"])  # the trained model
    assert files["wise_curve.csv"].count("\n") == 4


def test_zeroshot_has_no_effective_robustness_and_wise_ft_takes_its_curve_from_posthoc() -> None:
    metrics = run({"method": "zeroshot", "data": DATA})
    assert metrics["zeroshot/id/acc"] == metrics["id/acc"]
    assert metrics["robustness/effective"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["robustness/effective_val"] == pytest.approx(0.0, abs=1e-9)
    wise = {"alphas": [0.0, 1.0]}
    config = {"method": "wise_ft", "data": DATA, "train": TRAIN, "posthoc": {"wise": wise}}
    metrics = run(config)
    assert {k.split("/")[1] for k in metrics if k.startswith("wise/") and k != "wise/alpha_val"} == {"0.0", "1.0"}
    assert metrics["wise/0.0/id/acc"] == pytest.approx(metrics["zeroshot/id/acc"])
    assert all(math.isfinite(metrics[k]) for k in ("id/acc", "robustness/effective", "robustness/effective_val"))


def test_the_zero_shot_point_is_stored_once_per_model_and_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zeroshot_point, "cache_root", lambda: tmp_path)
    config = {"method": "zeroshot", "data": DATA}
    first = run(config)
    [stored] = (tmp_path / "zeroshot").glob("*.json")
    point = json.loads(stored.read_text())
    assert point["id/acc"] == first["zeroshot/id/acc"] == first["id/acc"]
    # A later trial on the same model and data reads the point instead of evaluating it again.
    stored.write_text(json.dumps({**point, "id/acc": 0.5}))
    assert run(config)["zeroshot/id/acc"] == 0.5
    other = run({**config, "data": {**DATA, "ood": ["painting"]}})  # other splits: another point
    assert other["zeroshot/id/acc"] == first["id/acc"] and len(list((tmp_path / "zeroshot").glob("*.json"))) == 2
