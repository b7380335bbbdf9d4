"""Lipsum-FT's random texts and regulariser, against hand computations on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.errors import InputError
from trainables.methods.lipsum_ft import EOT, SOT, LipsumFT, LipsumParams, energy_gap, random_texts


def test_random_texts_are_sot_then_l_uniform_ids_then_eot_then_padding() -> None:
    gen = torch.Generator().manual_seed(0)
    tokens = random_texts(count=50, length=6, context_length=32, generator=gen)
    assert tokens.shape == (50, 32)
    assert (tokens[:, 0] == SOT).all() and (tokens[:, 7] == EOT).all()
    body = tokens[:, 1:7]
    assert (body >= 0).all() and (body < SOT).all()
    assert (tokens[:, 8:] == 0).all()
    assert len(body.unique()) > 250  # drawn from the whole vocabulary, not a small set
    # EOT is the largest id, so argmax pooling reads the EOT position, as in the reference.
    assert (tokens.argmax(dim=1) == 7).all()


def test_random_texts_are_fresh_each_call_and_reproducible_by_seed() -> None:
    a = torch.Generator().manual_seed(1)
    b = torch.Generator().manual_seed(1)
    first, second = random_texts(4, 8, 32, a), random_texts(4, 8, 32, a)
    assert not torch.equal(first, second)
    assert torch.equal(first, random_texts(4, 8, 32, b))


def test_mse_regulariser_matches_a_hand_computation() -> None:
    v = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    v0 = torch.tensor([[1.0, 0.0, 1.0], [2.0, -1.0, 1.0]])
    # Sample 1: (0 + 4 + 4) / (2 * 3) = 8/6; sample 2: (4 + 0 + 9) / 6 = 13/6; mean = 21/12.
    assert energy_gap(v, v0, "mse").item() == pytest.approx(21 / 12)


def test_kld_regulariser_matches_a_hand_computation() -> None:
    v = torch.tensor([[1.0, 2.0], [0.5, 0.0]])
    v0 = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    tau = 2.0

    def softmax(row: list[float]) -> list[float]:
        e = [math.exp(x / tau) for x in row]
        return [x / sum(e) for x in e]

    expected = 0.0
    for row, row0 in zip(v.tolist(), v0.tolist(), strict=True):
        p, q = softmax(row0), softmax(row)  # KL(p_zero_shot || p_fine_tuned)
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    expected = tau**2 * expected / 2
    assert energy_gap(v, v0, "kld", tau).item() == pytest.approx(expected, rel=1e-5)


def test_regulariser_is_zero_when_towers_agree() -> None:
    v = torch.randn(5, 7)
    assert energy_gap(v, v.clone(), "mse").item() == 0.0
    assert energy_gap(v, v.clone(), "kld", 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_parameters_follow_the_reference_defaults_and_ranges() -> None:
    defaults = LipsumParams()
    assert (defaults.L, defaults.M, defaults.loss, defaults.lam) == (8, 80, "mse", 1.0)
    with pytest.raises(ValueError):
        LipsumParams(L=0)
    with pytest.raises(ValueError):
        LipsumParams(loss="l1")
    with pytest.raises(InputError, match="context length"):
        LipsumParams(L=31).check_model(context_length=32)
    LipsumParams(L=30).check_model(context_length=32)


def _built(**params) -> LipsumFT:
    from trainables.config import TrialConfig
    from trainables.loop import build_method

    config = TrialConfig.model_validate(
        {
            "method": "lipsum_ft",
            "data": {"source": {"shapes": {"per_class": {"train": 4, "val": 1, "test": 4}}}, "id": "photo"},
            "params": params,
            "seed": 0,
        }
    )
    return build_method(config, torch.device("cpu"))[0]


def test_text_bank_holds_exactly_the_features_fresh_texts_would_have() -> None:
    banked, fresh = _built(M=4, L=3, text_bank=6), _built(M=4, L=3)
    banked.prepare([])
    # Same seeded generator, same draws: the bank is the plain path's first six texts, encoded once.
    torch.testing.assert_close(banked.bank, fresh.encode_random_texts(6))
    assert "bank" in banked.trainable_state()  # a resumed trial keeps the same bank


def test_text_bank_steps_use_m_distinct_bank_rows_in_the_plain_regulariser() -> None:
    method = _built(M=4, L=3, text_bank=6, loss="mse")
    method.prepare([])
    state = method.context.generator.get_state()
    pick = torch.randperm(6, generator=method.context.generator)[:4]
    method.context.generator.set_state(state)
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    terms = method.training_loss(images, labels)
    texts = method.bank[pick]
    with torch.no_grad():
        v = method.scale * method.image_features(images) @ texts.T
        v0 = method.scale * method.zero_shot_features(images) @ texts.T
    assert len(set(pick.tolist())) == 4
    assert terms["reg"].item() == pytest.approx(energy_gap(v, v0, "mse").item(), rel=1e-5)


def test_a_bank_smaller_than_m_is_refused() -> None:
    with pytest.raises(InputError, match="cannot supply M = 80"):
        LipsumParams(text_bank=40).check_model(context_length=32)
    LipsumParams(text_bank=80).check_model(context_length=32)
