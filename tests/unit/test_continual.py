"""Continual sessions: the data each session gets, the metrics against hand computations, LoRSU's
per-session re-selection, folding LoRA updates, and resume between sessions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from method_steps import build_tiny

from trainables.config import SessionDomain, SessionSplit
from trainables.continual import ContinualRecord
from trainables.data.sessions import class_groups, session_plan
from trainables.data.shapes_source import ShapesSource
from trainables.data.shapes_world import ShapesConfig
from trainables.loop import STATE_FILE, run
from trainables.methods.lorsu import head_rows
from trainables.models.lora import add_lora, fold_lora

SHAPES = {"train": 8, "val": 2, "test": 4}
SOURCE = {"shapes": {"per_class": SHAPES}}


@pytest.fixture(scope="module")
def source() -> ShapesSource:
    return ShapesSource(ShapesConfig(per_class=SHAPES))


def test_class_groups_split_a_fixed_permutation_like_array_split() -> None:
    groups = class_groups(10, 4, order_seed=0)
    assert [len(g) for g in groups] == [3, 3, 2, 2]
    assert sorted(torch.cat(groups).tolist()) == list(range(10))
    assert [g.tolist() for g in groups] == [g.tolist() for g in class_groups(10, 4, order_seed=0)]
    assert [g.tolist() for g in groups] != [g.tolist() for g in class_groups(10, 4, order_seed=1)]


def test_sessions_by_class_train_and_test_on_their_own_classes(source: ShapesSource) -> None:
    plan = session_plan(SessionSplit(split="photo", count=5, shots=3), source)
    seen: set[int] = set()
    for session, group in zip(plan, class_groups(10, 5, 0), strict=True):
        classes = set(group.tolist())
        assert set(session.train.labels.tolist()) == classes and set(session.test.labels.tolist()) == classes
        assert torch.bincount(session.train.labels, minlength=10)[group].tolist() == [3, 3]  # shots per class
        assert len(session.test) == 2 * SHAPES["test"]
        assert not classes & seen
        seen |= classes
    assert len({s.train.fingerprint for s in plan}) == 5


def test_sessions_by_shot_deal_disjoint_images_over_every_class(source: ShapesSource) -> None:
    plan = session_plan(SessionSplit(split="photo", count=2, by="shot"), source)
    full = source.split("photo", "train")
    rows = [set(map(bytes, (s.train.images.flatten(1).numpy()))) for s in plan]  # type: ignore[union-attr]
    assert not rows[0] & rows[1]
    assert sum(len(s.train) for s in plan) == len(full)
    for session in plan:
        assert torch.bincount(session.train.labels, minlength=10).tolist() == [4] * 10
        assert session.test is plan[0].test  # every session is tested on the whole test split


def test_sessions_by_domain(source: ShapesSource) -> None:
    plan = session_plan([SessionDomain(id="sketch"), SessionDomain(id="photo")], source)
    assert [s.name for s in plan] == ["sketch", "photo"]
    assert plan[0].train.domain == "sketch" and plan[1].test.domain == "photo"


def test_continual_metrics_against_a_hand_computation() -> None:
    record = ContinualRecord()
    record.set_zero_shot([0.5, 0.4, 0.3], {"zs/colour/acc": 0.9, "zs/unseen_shapes/acc": 0.8})
    first = record.after_session([0.7], {"zs/colour/acc": 0.85, "zs/unseen_shapes/acc": 0.8, "id/acc": 0.6})
    assert first["session/1/target_gain"] == pytest.approx(0.2)
    assert first["session/1/retention_change"] == pytest.approx(-0.025)
    assert first["session/1/id/acc"] == 0.6 and "session/1/forgetting" not in first
    record.after_session([0.6, 0.8], {})
    third = record.after_session([0.65, 0.5, 0.9], {})
    # forgetting: session 1 peaked at 0.7 (after 1), session 2 at 0.8 -> ((0.7-0.65) + (0.8-0.5)) / 2
    assert third["session/3/forgetting"] == pytest.approx(0.175)
    assert third["session/3/seen_acc"] == pytest.approx((0.65 + 0.5 + 0.9) / 3)
    assert third["session/3/acc/2"] == 0.5 and third["session/3/target_acc"] == 0.9
    summary = record.summary(third)
    assert summary["continual/target_gain"] == pytest.approx(((0.7 - 0.5) + (0.8 - 0.4) + (0.9 - 0.3)) / 3)
    assert summary["continual/forgetting"] == pytest.approx(0.175)
    assert summary["continual/sessions"] == 3 and "continual/retention_change" not in summary
    again = ContinualRecord()
    again.load(record.state())
    assert again.forgetting(2) == pytest.approx(0.175)


def test_folding_a_lora_update_keeps_the_function_and_restarts_at_zero() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(6, 5)
    delta = add_lora(layer, "weight", rank=2, alpha=2)
    with torch.no_grad():
        delta.B.normal_()
    x = torch.randn(3, 6)
    before = layer(x)
    fold_lora(layer, "weight")
    assert torch.allclose(layer(x), before, atol=1e-6)
    assert torch.count_nonzero(delta.delta()) == 0 and torch.count_nonzero(delta.A) > 0


def _lorsu_config(epochs: int = 1) -> dict[str, Any]:
    return {
        "method": "lorsu",
        "data": {"source": SOURCE, "id": "photo", "retention": False},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 3e-3},
        "sessions": {"split": "photo", "count": 2},
        "params": {"importance_samples": 16},
    }


def _checkpointing_reporter(folder: Path, states: dict[int, dict], summaries: list) -> Any:
    def report(epoch: int, metrics: dict, checkpoint: Any, summary: Any = None) -> None:
        target = folder / f"epoch_{epoch}"
        target.mkdir(parents=True)
        checkpoint(target)
        states[epoch] = torch.load(target / STATE_FILE, weights_only=True)
        if summary is not None:
            summaries.append(summary)

    return report


def test_lorsu_selects_heads_and_fc1_again_in_each_session_and_resumes_between_them(tmp_path: Path) -> None:
    states: dict[int, dict] = {}
    summaries: list[dict] = []
    straight = run(_lorsu_config(epochs=2), _checkpointing_reporter(tmp_path / "a", states, summaries))
    first, second = states[1]["method"], states[2]["method"]  # the end of session 1, session 2's first epoch
    # Different classes, different gradients: the masks chosen for session 2 are not session 1's.
    assert not torch.equal(first["fc1_mask"], second["fc1_mask"])
    assert first["fc1_mask"].sum() == second["fc1_mask"].sum()  # the same sparsity
    # Session 1's update was folded into the base weight, and its factors restarted at 0 (B).
    base = "model.visual.transformer.resblocks.0.attn.parametrizations.in_proj_weight"
    shape = build_tiny("lorsu")
    rows = head_rows(first["heads"][0], shape.num_heads, shape.head_dim)
    update = (first[f"{base}.0.A"] * rows[:, None]) @ first[f"{base}.0.B"]  # alpha / rank = 1 by default
    assert torch.count_nonzero(first[f"{base}.0.B"]) > 0
    assert torch.allclose(second[f"{base}.original"], first[f"{base}.original"] + update, atol=1e-6)
    assert set(straight) >= {"continual/forgetting", "session/2/acc/1", "continual/avg_acc"}
    # Killed after session 1 and resumed from its checkpoint: the same trial to the last bit.
    resumed = run(_lorsu_config(epochs=2), resume_from=tmp_path / "a" / "epoch_1")
    assert resumed == straight
    assert not any(math.isnan(v) for v in straight.values())
