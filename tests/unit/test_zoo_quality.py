"""The quality bar of the shipped zoo, measured on the shipped weights.

The bar (issue 2): zero-shot accuracy between 0.40 and 0.85 on every domain and below 0.60 on at
least one, and plain fine-tuning on photo lifting photo by 20 points or more. tiny-clip-v1 meets
the zero-shot part; fine-tuning lifts its photo by 9 points, not 20, and tiny-clip-v2 is saturated.
Those checks are strict xfails that state the measured numbers, so they turn red (XPASS) the
moment a rebuilt zoo meets them and the marker must go.
"""

from __future__ import annotations

import pytest

from trainables.data.shapes import DOMAINS
from trainables.loop import run
from trainables.models import zoo
from trainables.models.loading import load_clip
from trainables.models.zoo.card import zero_shot_table

SATURATED_V2 = pytest.mark.xfail(
    strict=True, reason="tiny-clip-v2 is saturated: 0.85-0.97 zero-shot on every domain (card)"
)


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


@pytest.mark.parametrize("name", [
    "tiny-clip-v1", pytest.param("tiny-clip-v2", marks=SATURATED_V2),
])
def test_zero_shot_is_not_saturated_on_any_domain(measured, name: str) -> None:
    accs = measured[name]["zero_shot"]
    assert max(accs.values()) <= 0.85, accs


@pytest.mark.parametrize("name", [
    "tiny-clip-v1", pytest.param("tiny-clip-v2", marks=SATURATED_V2),
])
def test_zero_shot_is_below_sixty_percent_somewhere(measured, name: str) -> None:
    accs = measured[name]["zero_shot"]
    assert min(accs.values()) < 0.60, accs


@pytest.mark.parametrize("name", zoo.names())
def test_shipped_weights_fit_the_size_limit(name: str) -> None:
    assert zoo.weights_path(name).stat().st_size <= 10 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="3 epochs of FT lift tiny-clip-v1's photo from 0.5225 to 0.611 only (+9)")
def test_fine_tuning_on_photo_lifts_photo_by_twenty_points() -> None:
    zero_shot = zoo.read_card("tiny-clip-v1")["evaluation"]["zero_shot"]["photo"]
    metrics = run({
        "method": "ft", "model": "zoo/tiny-clip-v1", "data": {"id": "photo", "ood": []},
        "train": {"epochs": 3, "batch_size": 64, "lr": 3e-4},
    })
    assert metrics["id/acc"] >= zero_shot + 0.20, (zero_shot, metrics["id/acc"])
