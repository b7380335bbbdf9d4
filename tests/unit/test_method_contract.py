"""The contract every registered method honours, checked for each one on the tiny model.

A few optimisation steps on one fixed batch must give a finite, falling loss and change only what
the method declares it trains; a one-epoch trial must report the standard metric names; and a
checkpoint must restore to an identical evaluation. A new method file gets all of this for free.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from trainables import registry
from trainables.config import TrialConfig
from trainables.data.shapes_source import ShapesSource
from trainables.data.shapes_world import ShapesConfig
from trainables.data.transforms import normalize_batch
from trainables.evaluation import evaluate
from trainables.loop import STATE_FILE, build_method, run

TINY = {"shapes": {"per_class": {"train": 4, "val": 1, "test": 4}}}
DATA = {"source": TINY, "id": "photo", "ood": ["sketch"]}
STEPS = 12
TRAINING = [n for n in registry.names() if registry.params(n).trains]
# Methods that must leave both CLIP towers bitwise unchanged (they learn prompts only).
PROMPT_ONLY = {"coop", "kgcoop", "contcoop"}
# DiVE's lam = 1000 suits small learning rates: its anchored regulariser is exactly 0 at step 0,
# so at this test's lr of 1e-3 the total loss rises however well the FLYP term falls.
CONTRACT_PARAMS = {"dive": {"lam": 1.0}}


def _config(method: str, **train) -> TrialConfig:
    return TrialConfig.model_validate(
        {
            "method": method,
            "data": DATA,
            "train": {"epochs": 1, "batch_size": 20, **train},
            "seed": 0,
            "params": CONTRACT_PARAMS.get(method, {}),
        }
    )


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    split = ShapesSource(ShapesConfig(per_class={"train": 4, "val": 1, "test": 4})).split("photo", "train")
    return normalize_batch(split.images[:20]), split.labels[:20]


def _optimised_ids(method) -> set[int]:
    return {id(p) for group in method.parameter_groups() for p in group["params"]}


def test_every_paper_method_is_registered() -> None:
    expected = {
        "zeroshot",
        "ft",
        "lipsum_ft",
        "lp",
        "lp_ft",
        "wise_ft",
        "flyp",
        "car_ft",
        "dive",
        "coop",
        "kgcoop",
        "contcoop",
        "lora",
        "lorsu",
        "l2sp",
        "kd",
        "tpgm",
        "clip_adapter",
        "tip_adapter",
        "tip_adapter_f",
    }
    assert expected <= set(registry.names())


@pytest.mark.parametrize("name", registry.names())
def test_method_declares_documented_parameters(name: str) -> None:
    declared = registry.params(name)
    assert declared.__doc__ and declared.paper, f"{name} needs a one-line summary and a paper reference"
    for field, info in declared.model_fields.items():
        assert info.description, f"{name}.{field} has no description"
    declared()  # the paper defaults must validate


@pytest.mark.parametrize("name", registry.names())
def test_each_declaration_has_its_implementation_of_the_same_module_name(name: str) -> None:
    declared, method = registry.params(name), registry.get(name)
    assert method.Params is declared and method.name == declared.method == name
    assert method.__module__.rpartition(".")[2] == declared.__module__.rpartition(".")[2]
    assert method.__doc__, f"{name}'s Method class needs a docstring"


@pytest.mark.parametrize("name", TRAINING)
def test_loss_is_finite_and_falls_and_only_declared_parameters_change(name: str) -> None:
    method, _ = build_method(_config(name), torch.device("cpu"))
    method.prepare([_batch()])
    before = {k: v.detach().clone() for k, v in method.state_dict().items()}
    optimised = _optimised_ids(method)
    optimiser = torch.optim.AdamW(method.parameter_groups(), lr=1e-3, weight_decay=0.0)
    images, labels = _batch()
    method.train()
    losses = []
    for _ in range(STEPS):
        torch.manual_seed(0)  # same dropout / augmentation noise every step: a fixed objective
        terms = method.training_loss(images, labels)
        assert all(math.isfinite(v.item()) for v in terms.values()), terms
        optimiser.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimiser.step()
        losses.append(terms["loss"].item())
    assert losses[-1] < losses[0], losses

    params = dict(method.named_parameters())
    allowed = {n for n, p in params.items() if id(p) in optimised} | set(method.checkpoint_buffers)
    changed = {k for k, v in method.state_dict().items() if not torch.equal(v, before[k])}
    assert changed, "nothing was trained"
    assert changed <= allowed, f"undeclared changes: {sorted(changed - allowed)}"
    if name in PROMPT_ONLY:
        assert not any(k.startswith("model.") for k in changed), sorted(changed)


@pytest.mark.parametrize("name", registry.names())
def test_trial_reports_the_standard_metrics(name: str) -> None:
    metrics = run(_config(name).model_dump())
    for key in (
        "id/acc",
        "id/ece",
        "id/nll",
        "ood/sketch/acc",
        "ood/avg_acc",
        "ood/avg_ece",
        "zs/unseen_shapes/acc",
        "zs/colour/acc",
        "params/trainable",
        "params/trainable_fraction",
    ):
        assert key in metrics, key
        assert math.isfinite(metrics[key]), (key, metrics[key])
    assert 0.0 <= metrics["id/acc"] <= 1.0


@pytest.mark.parametrize("name", TRAINING)
def test_checkpoint_restores_an_identical_evaluation(name: str, tmp_path: Path) -> None:
    config = _config(name, epochs=2)
    captured: dict[str, object] = {}

    def reporter(epoch, metrics, write, summary=None) -> None:
        if epoch == 0:
            write(tmp_path)
            captured["metrics"] = metrics

    with pytest.raises(_Stop):
        run(config, lambda e, m, w, summary=None: (reporter(e, m, w), _stop_after_first(e)))
    fresh, data = build_method(config, torch.device("cpu"))
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    fresh.load_state_dict(state["method"], strict=False)
    restored = evaluate(fresh, data["eval"], "photo", torch.device("cpu"))
    original = captured["metrics"]
    for key, value in restored.items():
        assert value == pytest.approx(original[key], abs=1e-6), key


class _Stop(Exception):
    pass


def _stop_after_first(epoch: int) -> None:
    if epoch == 0:
        raise _Stop
