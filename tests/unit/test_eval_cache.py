"""Evaluation's feature cache for methods with a frozen image tower: the cached path gives the
same metrics as encoding every image at every evaluation, and encodes each split only once."""

from __future__ import annotations

import pytest
import torch

from trainables import registry
from trainables.config import TrialConfig
from trainables.evaluation import evaluate, retention_metrics
from trainables.loop import build_method

DATA = {"source": {"shapes": {"per_class": {"train": 8, "test": 12}}}, "id": "photo", "ood": ["sketch", "clipart"]}


def test_frozen_means_frozen_in_every_registered_method() -> None:
    # A method that trains its image tower must not claim a frozen one: its cache would go stale.
    # The adapters train only what acts on the tower's features (logits_from_features).
    frozen = {"zeroshot", "lp", "coop", "kgcoop", "contcoop", "clip_adapter", "tip_adapter", "tip_adapter_f"}
    for name in registry.names():
        cls = registry.get(name)
        if cls.frozen_image_tower:
            assert name in frozen, name


@pytest.mark.parametrize("name", ["coop", "lp", "zeroshot"])
def test_cached_features_give_the_plain_metrics_and_encode_once(name: str, monkeypatch) -> None:
    config = TrialConfig.model_validate({"method": name, "data": DATA, "seed": 1})
    method, data = build_method(config, torch.device("cpu"))
    assert method.frozen_image_tower
    if method.trains:  # move the trained part so that the two evaluations differ
        with torch.no_grad():
            for parameter in (p for p in method.parameters() if p.requires_grad):
                parameter.add_(0.05 * torch.randn_like(parameter))
    encoded = []
    real = type(method).eval_features
    monkeypatch.setattr(type(method), "eval_features", lambda self, x: encoded.append(len(x)) or real(self, x))

    first = evaluate(method, data["eval"], "photo", torch.device("cpu"))
    second = evaluate(method, data["eval"], "photo", torch.device("cpu"))
    assert sum(encoded) == 3 * 120  # three splits of 120 images, encoded by the first call only
    method.frozen_image_tower = False  # the plain path: every image through the tower again
    plain = evaluate(method, data["eval"], "photo", torch.device("cpu"))
    for key, value in plain.items():
        assert first[key] == pytest.approx(value, abs=1e-6) and second[key] == pytest.approx(value, abs=1e-6), key

    method.frozen_image_tower = True
    cached = retention_metrics(method, data["tasks"], torch.device("cpu"))
    assert set(method.eval_feature_cache) >= {f"zs/{task}" for task in data["tasks"]}
    method.frozen_image_tower = False
    method.eval_feature_cache.clear()
    assert retention_metrics(method, data["tasks"], torch.device("cpu")) == pytest.approx(cached)


def test_encode_split_caches_features_on_disk_per_model_and_refuses_a_random_transform(tmp_path) -> None:
    # trainables.data.feature_cache, the disk cache that methods may use for frozen encoders.
    from trainables.data.feature_cache import encode_split
    from trainables.data.shapes_source import ShapesSource
    from trainables.data.shapes_world import ShapesConfig
    from trainables.data.transforms import eval_transform, train_transform

    split = ShapesSource(ShapesConfig(per_class={"train": 2, "val": 1, "test": 2})).split("photo", "test")
    transform = eval_transform(32)
    encoded: list[int] = []

    def encoder(images: torch.Tensor) -> torch.Tensor:
        encoded.append(len(images))
        return images.flatten(1)[:, :8]

    features, labels = encode_split(encoder, "model-a", split, transform, batch_size=8, cache_dir=tmp_path)
    expected = torch.stack([transform(image) for image in split.images]).flatten(1)[:, :8]
    assert torch.allclose(features, expected) and torch.equal(labels, split.labels) and encoded == [8, 8, 4]
    again, _ = encode_split(encoder, "model-a", split, transform, cache_dir=tmp_path)
    assert torch.equal(again, features) and sum(encoded) == 20  # read back from disk, not encoded again
    encode_split(encoder, "model-b", split, transform, cache_dir=tmp_path)
    assert sum(encoded) == 40  # another model's features are another entry
    with pytest.raises(ValueError, match="random"):
        encode_split(encoder, "model-a", split, train_transform(32), cache_dir=tmp_path)
