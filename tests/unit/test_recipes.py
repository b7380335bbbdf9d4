"""Train recipes as data: per method and model family, with the papers' values."""

from __future__ import annotations

import pytest
import torch

from trainables import registry
from trainables.config import TrialConfig
from trainables.optim import make_optimizer, make_schedule
from trainables.recipes import BASE_RECIPES, FAMILIES, model_family, recipe

REAL_CLIP = {"arch": "ViT-B-16", "pretrained": "openai"}
DATA = {"id": "photo", "ood": []}


def test_the_model_decides_the_family() -> None:
    assert model_family("zoo/tiny-clip-v1") == "tiny"
    assert model_family(REAL_CLIP) == "clip" and model_family("/ckpt/ft.safetensors") == "clip"


@pytest.mark.parametrize("name, batch, epochs", [("coop", 32, 200), ("kgcoop", 128, 100), ("contcoop", 128, 100)])
def test_prompt_methods_train_as_the_official_dassl_configs(name: str, batch: int, epochs: int) -> None:
    # CoOp configs/trainers/CoOp/vit_b16.yaml, KgCoOp vit_b16_ep100_ctxv1.yaml: SGD lr 2e-3, momentum
    # 0.9, weight decay 5e-4, one constant warm-up epoch at 1e-5, then cosine.
    train = TrialConfig(method=name, model=REAL_CLIP, data=DATA).train
    assert (train.optimizer, train.lr, train.momentum, train.weight_decay) == ("sgd", 2e-3, 0.9, 5e-4)
    assert (train.warmup_epochs, train.warmup_lr, train.batch_size, train.epochs) == (1.0, 1e-5, batch, epochs)
    optimizer = make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))]}], train)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["weight_decay"] == 5e-4
    # The schedule these settings make (a constant epoch at 1e-5, then cosine from 2e-3) is checked
    # in test_loop.py::test_constant_warmup_then_cosine_as_in_the_dassl_configs.
    assert make_schedule(optimizer, train, steps_per_epoch=4).get_last_lr() == pytest.approx([1e-5])
    # The tiny world keeps the optimiser; its warm-up is a fraction of its few steps.
    tiny = TrialConfig(method=name, data=DATA).train
    assert (tiny.optimizer, tiny.lr, tiny.momentum, tiny.weight_decay, tiny.warmup_lr) == ("sgd", 2e-3, 0.9, 5e-4, 1e-5)
    assert tiny.warmup_epochs is None


def test_clip_adapter_trains_as_coop_on_clip_and_at_a_larger_lr_on_the_zoo() -> None:
    # The README of gaopengcuhk/CLIP-Adapter runs it with CoOp's commands: CoOp's Dassl config.
    train = TrialConfig(method="clip_adapter", model=REAL_CLIP, data=DATA).train
    assert (train.optimizer, train.lr, train.batch_size, train.epochs, train.warmup_epochs) == (
        "sgd",
        2e-3,
        32,
        200,
        1.0,
    )
    # The tiny zoo keeps the optimiser at lr 0.5 [R]: at 2e-3 the adapter stays at zero-shot there.
    tiny = TrialConfig(method="clip_adapter", data=DATA).train
    assert (tiny.optimizer, tiny.lr, tiny.momentum, tiny.weight_decay, tiny.batch_size) == ("sgd", 0.5, 0.9, 5e-4, 32)


def test_real_clip_gets_the_papers_ft_recipe_and_the_zoo_keeps_its_own() -> None:
    ft = TrialConfig(method="ft", model=REAL_CLIP, data=DATA).train
    assert (ft.lr, ft.weight_decay, ft.grad_clip, ft.crop_scale, ft.optimizer) == (3e-5, 0.1, 1.0, [0.08, 1.0], "adamw")
    lipsum = TrialConfig(method="lipsum_ft", model=REAL_CLIP, data=DATA).train
    assert (lipsum.lr, lipsum.weight_decay, lipsum.batch_size, lipsum.grad_clip) == (1e-5, 0.0, 256, None)
    tiny = TrialConfig(method="ft", data=DATA).train
    assert (tiny.lr, tiny.weight_decay, tiny.grad_clip, tiny.crop_scale) == (3e-4, 0.0, None, [0.8, 1.0])


def test_the_file_wins_over_the_recipe() -> None:
    train = TrialConfig(method="kgcoop", model=REAL_CLIP, data=DATA, train={"lr": 0.01, "optimizer": "adamw"}).train
    assert (train.lr, train.optimizer, train.weight_decay) == (0.01, "adamw", 5e-4)


def test_every_recipe_is_a_valid_train_config() -> None:
    from trainables.config import TrainConfig

    for name in registry.names():
        for family in FAMILIES:
            TrainConfig(**recipe(registry.params(name), family))
            assert set(recipe(registry.params(name), family)) >= set(BASE_RECIPES[family])
