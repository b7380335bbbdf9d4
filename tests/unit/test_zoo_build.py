"""`sweeper zoo build` and `sweeper zoo show`: determinism, card contents, and the JSON form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sweeper.cli import main
from trainables.data.shapes_world import DOMAINS, ShapesConfig
from trainables.models import zoo
from trainables.models.zoo.pretrain import caption_batch, lr_at, pretrain

TINY = zoo.PretrainRecipe(seed=3, steps=4, batch_size=16, warmup_steps=2)


def test_caption_batches_are_deterministic_and_mixed() -> None:
    world = ShapesConfig()
    a_images, a_texts = caption_batch(world, seed=1, step=7, batch_size=64)
    b_images, b_texts = caption_batch(world, seed=1, step=7, batch_size=64)
    assert torch.equal(a_images, b_images) and a_texts == b_texts
    c_images, _ = caption_batch(world, seed=1, step=8, batch_size=64)
    assert not torch.equal(a_images, c_images)
    assert len({t.split()[1] for t in a_texts}) > 3


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    recipe = zoo.PretrainRecipe(seed=0, steps=100, lr=1e-3, warmup_steps=10)
    assert lr_at(0, recipe) == pytest.approx(1e-4)
    assert lr_at(9, recipe) == pytest.approx(1e-3)
    assert lr_at(99, recipe) < 1e-6 + 1e-3 * 0.001


def test_pretraining_is_deterministic_and_moves_the_weights() -> None:
    losses: list[float] = []
    first = pretrain("tiny-clip-v1", TINY, lambda step, loss, _m: losses.append(loss))
    second = pretrain("tiny-clip-v1", TINY)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    torch.manual_seed(TINY.seed)
    import open_clip

    init = open_clip.create_model("tiny-clip-v1", pretrained=None)
    assert not torch.equal(init.visual.conv1.weight, first.visual.conv1.weight)
    assert len(losses) == TINY.steps and all(loss == loss for loss in losses)  # no NaN


def test_zoo_build_writes_weights_and_a_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(zoo.RECIPES, "tiny-clip-v1", TINY)
    # The card is measured on a small world here (test_zoo_quality measures the shipped cards on
    # the full one): this test checks what the card holds, and the full world took 40 of its 45 s.
    from trainables.models.zoo import card as zoo_card

    small = ShapesConfig(per_class={"train": 4, "val": 1, "test": 4})
    monkeypatch.setattr(zoo_card, "ShapesConfig", lambda: small)
    monkeypatch.setattr(zoo_card, "TASK_PER_CLASS", 4)
    assert main(["zoo", "build", "--model", "tiny-clip-v1", "--out", str(tmp_path)]) == 0
    card = json.loads((tmp_path / "tiny-clip-v1.card.json").read_text())
    assert card["recipe"]["steps"] == TINY.steps and card["wall_time_s"] > 0
    assert set(card["evaluation"]["zero_shot"]) == set(DOMAINS)
    assert card["file_size_bytes"] == (tmp_path / "tiny-clip-v1.safetensors").stat().st_size
    assert "zoo build wall time" in capsys.readouterr().out


def test_zoo_show_json_lists_every_model_with_config_size_and_zero_shot(capsys) -> None:
    assert main(["zoo", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == zoo.names()
    for name, row in data.items():
        assert set(row["zero_shot"]) == set(DOMAINS)
        assert row["config"]["vision_cfg"]["image_size"] == 32
        assert row["file_size_bytes"] == zoo.weights_path(name).stat().st_size


def test_zoo_show_prints_a_table(capsys) -> None:
    assert main(["zoo", "show"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in zoo.names()) and "photo" in out


def test_zoo_build_rejects_an_out_path_that_is_a_file(tmp_path: Path, capsys) -> None:
    file = tmp_path / "file.txt"
    file.write_text("x")
    assert main(["zoo", "build", "--out", str(file)]) == 2
    assert "--out" in capsys.readouterr().err
