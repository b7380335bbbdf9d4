"""CLIP-Adapter, Tip-Adapter and Tip-Adapter-F: the adapter and the cache logits against hand
computations, the alpha / beta search on validation data, what each paper changes, and the
model-update compat metrics of the modules carried unchanged to tiny-clip-v2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from sweeper.cli import main
from trainables.config import TrialConfig
from trainables.data.captions import CLASS_TEMPLATES
from trainables.data.shapes_source import ShapesSource
from trainables.data.shapes_world import CLASSES, ShapesConfig
from trainables.data.transforms import normalize_batch
from trainables.errors import InputError
from trainables.loop import run
from trainables.methods._adapter import ImageAdapter
from trainables.methods.base import TrialContext
from trainables.methods.clip_adapter import ClipAdapter
from trainables.methods.tip_adapter import TipAdapter, augment, cache_logits, search_grid
from trainables.methods.tip_adapter_f import TipAdapterF
from trainables.models.heads import zero_shot_head
from trainables.models.loading import load_clip
from trainables.optim import make_optimizer

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]
DATA = {"source": {"shapes": {"per_class": {"train": 4, "val": 2, "test": 5}}}, "id": "photo", "ood": ["sketch"]}


def make(cls: type[ImageAdapter], model: str = "zoo/tiny-clip-v1", **params) -> ImageAdapter:
    bundle = load_clip(model)
    context = TrialContext(bundle, CLASSES, CLASS_TEMPLATES, torch.Generator().manual_seed(0), torch.device("cpu"))
    return cls(context, cls.Params(**params))


def split(name: str, per_class: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    data = ShapesSource(ShapesConfig(per_class={"train": per_class, "val": 2, "test": 4})).split("photo", name)
    return normalize_batch(data.images), data.labels


def test_clip_adapter_logits_follow_the_official_forward() -> None:
    method = make(ClipAdapter, ratio=0.3)
    bundle = method.context.bundle
    with torch.no_grad():
        for weight in (method.adapter.down.weight, method.adapter.up.weight):
            weight.normal_(std=0.3)
    images, _ = split("test")
    with torch.no_grad():
        x = bundle.model.encode_image(images)  # raw features, as the code feeds them
        a = torch.relu(torch.relu(x @ method.adapter.down.weight.T) @ method.adapter.up.weight.T)
        mixed = 0.3 * a + 0.7 * x
        head = zero_shot_head(bundle.model, bundle.tokenizer, CLASSES, ["a photo of a {}."])
        expected = bundle.model.logit_scale.exp() * F.normalize(mixed, dim=-1) @ head
        actual = method.logits(images)
    assert method.adapter.down.weight.shape == (64 // 4, 64) and method.adapter.down.bias is None
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_cache_logits_against_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(5, 8))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    keys = rng.normal(size=(12, 8))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    values = np.eye(3)[rng.integers(0, 3, size=12)]
    expected = np.zeros((5, 3))
    for i in range(5):
        for n in range(12):
            expected[i] += 1.7 * np.exp(-5.5 * (1 - f[i] @ keys[n])) * values[n]
    as_torch = [torch.tensor(a) for a in (f, keys, values)]
    np.testing.assert_allclose(cache_logits(*as_torch, alpha=1.7, beta=5.5).numpy(), expected, rtol=1e-10)


def test_tip_adapter_cache_and_logits_by_hand() -> None:
    method = make(TipAdapter, augment_epochs=0, alpha=2.0, beta=3.0, search_hp=False)
    images, labels = split("train")
    method.prepare([(images[:20], labels[:20]), (images[20:], labels[20:])])
    model = method.context.bundle.model
    with torch.no_grad():
        keys = F.normalize(model.encode_image(images), dim=-1)
        torch.testing.assert_close(method.keys, keys, rtol=1e-5, atol=1e-5)
        assert torch.equal(method.cache_values, F.one_hot(labels, len(CLASSES)).float())
        test, _ = split("test")
        f = F.normalize(model.encode_image(test), dim=-1)
        expected = (
            model.logit_scale.exp() * f @ method.head + 2.0 * torch.exp(-3.0 * (1 - f @ keys.T)) @ method.cache_values
        )
        torch.testing.assert_close(method.logits(test), expected, rtol=1e-4, atol=1e-4)


def test_keys_average_the_raw_features_of_the_augmented_views() -> None:
    method = make(TipAdapter, augment_epochs=3, search_hp=False)
    images, labels = split("train", per_class=1)
    method.prepare([(images, labels)])
    replay = torch.Generator().manual_seed(0)  # the context's generator, replayed
    model = method.context.bundle.model
    with torch.no_grad():
        total = sum(model.encode_image(augment(images, replay)) for _ in range(3))
    torch.testing.assert_close(method.keys, F.normalize(total, dim=-1), rtol=1e-5, atol=1e-5)
    views = augment(images, torch.Generator().manual_seed(1))
    assert views.shape == images.shape and not torch.equal(views, images)


def test_the_cache_classifies_its_own_shots_and_alpha_zero_is_zero_shot() -> None:
    """Tip-Adapter's claim, training-free: the cache adds the few-shot set's knowledge to CLIP."""
    images, labels = split("train")
    sharp = make(TipAdapter, augment_epochs=0, alpha=50.0, beta=50.0, search_hp=False)
    sharp.prepare([(images, labels)])
    off = make(TipAdapter, augment_epochs=0, alpha=0.0, search_hp=False)
    off.prepare([(images, labels)])
    with torch.no_grad():
        zero_shot = off.scale * off.eval_features(images) @ off.head
        torch.testing.assert_close(off.logits(images), zero_shot)
        zs_acc = (zero_shot.argmax(1) == labels).float().mean().item()
        cache_acc = (sharp.logits(images).argmax(1) == labels).float().mean().item()
    assert cache_acc == 1.0 > zs_acc


def test_search_keeps_the_first_best_validation_point_of_the_official_grid() -> None:
    method = make(TipAdapter, augment_epochs=0, search_beta_max=7.0, search_alpha_max=3.0)
    train, val = split("train"), split("val")
    method.prepare([train], [val])
    model = method.context.bundle.model
    with torch.no_grad():
        f = F.normalize(model.encode_image(val[0]), dim=-1).double().numpy()
    keys, values = method.keys.detach().double().numpy(), method.cache_values.double().numpy()
    clip = float(method.scale) * f @ method.head.double().numpy()
    best, choice = -1.0, None
    for beta in [0.1 + i * 6.9 / 200 for i in range(200)]:
        for alpha in [0.1 + i * 2.9 / 20 for i in range(20)]:
            logits = clip + alpha * np.exp(-beta * (1 - f @ keys.T)) @ values
            accuracy = float((logits.argmax(1) == val[1].numpy()).mean())
            if accuracy > best + 1e-12:
                best, choice = accuracy, (alpha, beta)
    assert (float(method.alpha), float(method.beta)) == pytest.approx(choice)
    assert search_grid(13.0, 20)[:2] == pytest.approx([0.1, 0.745])


def test_the_search_reads_the_validation_split_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    original = TipAdapter.search

    def spy(self, validation):
        batches = list(validation)
        seen.append(sum(len(y) for _, y in batches))
        original(self, batches)

    monkeypatch.setattr(TipAdapter, "search", spy)
    run({"method": "tip_adapter", "data": DATA, "params": {"augment_epochs": 1}})
    assert seen == [2 * len(CLASSES)]  # the ID val split (2 per class), not the test split (5)


def test_clip_adapter_trains_only_the_adapter_and_fits_the_shots() -> None:
    """CLIP-Adapter's claim: a small adapter on frozen features fits the few-shot task."""
    method = make(ClipAdapter, ratio=0.5)
    images, labels = split("train")
    frozen = {k: v.clone() for k, v in method.state_dict().items() if not k.startswith("adapter.")}
    before = (method.logits(images).argmax(1) == labels).float().mean().item()
    optimiser = torch.optim.AdamW(method.parameter_groups(), lr=1e-2)
    method.train()
    for _ in range(40):
        loss = method.training_loss(images, labels)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    method.eval()
    after = (method.logits(images).argmax(1) == labels).float().mean().item()
    assert after > before + 0.2, (before, after)
    assert all(torch.equal(v, method.state_dict()[k]) for k, v in frozen.items())
    assert {n for n, p in method.named_parameters() if p.requires_grad} == {"adapter.down.weight", "adapter.up.weight"}


@pytest.mark.parametrize(("lr", "moves"), [(None, True), (2e-3, False)])
def test_clip_adapter_moves_at_its_tiny_recipe_and_not_at_coops_lr(lr: float | None, moves: bool) -> None:
    """The tiny zoo's lr [R]: CoOp's SGD at 2e-3, the official recipe, leaves the adapter where it
    started in a tiny budget (logit scale 21.5, not CLIP's 100); the tiny recipe's lr fits the shots."""
    config = TrialConfig(method="clip_adapter", data={"id": "photo"}, train={} if lr is None else {"lr": lr})
    assert (config.train.optimizer, config.train.momentum, config.train.weight_decay) == ("sgd", 0.9, 5e-4)
    method = make(ClipAdapter)
    images, labels = split("train", per_class=8)
    optimiser = make_optimizer(method.parameter_groups(), config.train)
    with torch.no_grad():
        before = method.logits(images)
    losses = []
    for _ in range(40):
        loss = method.training_loss(images, labels)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    with torch.no_grad():
        after = method.logits(images)
    if moves:
        assert losses[-1] < losses[0] - 0.1 and (after.argmax(1) == labels).sum() > (before.argmax(1) == labels).sum()
    else:
        assert losses[0] - losses[-1] < 0.01 and (after - before).abs().max() < 0.1


def test_tip_adapter_f_starts_at_tip_adapter_and_fine_tunes_the_keys_only() -> None:
    images, labels = split("train")
    f = make(TipAdapterF, augment_epochs=0, alpha=5.0, beta=5.0)
    plain = make(TipAdapter, augment_epochs=0, alpha=5.0, beta=5.0, search_hp=False)
    for method in (f, plain):
        method.prepare([(images, labels)])
    test, _ = split("test")
    with torch.no_grad():
        torch.testing.assert_close(f.logits(test), plain.logits(test))
    start = f.keys.detach().clone()
    values = f.cache_values.clone()
    assert [g["params"] for g in f.parameter_groups()] == [[f.keys]] and f.parameter_groups()[0]["eps"] == 1e-4
    optimiser = torch.optim.AdamW(f.parameter_groups(), lr=1e-2)
    losses = []
    for _ in range(10):
        loss = f.training_loss(images, labels)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert not torch.equal(f.keys, start) and torch.equal(f.cache_values, values)
    assert not any(p.requires_grad for p in plain.parameters())  # training-free: nothing trains


def test_tip_adapter_f_searches_alpha_and_beta_on_validation_after_training_not_before() -> None:
    images, labels = split("train")
    data = ShapesSource(ShapesConfig(per_class={"train": 4, "val": 2, "test": 4}))
    f = make(TipAdapterF, augment_epochs=0, alpha=1.0, beta=1.0)
    f.context.validation = data.split("photo", "val")
    f.prepare([(images, labels)], [split("val")])
    assert (float(f.alpha), float(f.beta)) == (1.0, 1.0)  # the keys train at the initial values
    with torch.no_grad():
        f.keys.add_(0.05 * torch.randn_like(f.keys))
    twin = make(TipAdapter, augment_epochs=0, alpha=1.0, beta=1.0)  # the same grid search, done directly
    twin.keys.data, twin.cache_values = f.keys.detach().clone(), f.cache_values.clone()
    twin.search([split("val")])
    f.after_training()
    assert f.reports_final_epoch()
    assert (float(f.alpha), float(f.beta)) == (float(twin.alpha), float(twin.beta)) != (1.0, 1.0)
    fixed = make(TipAdapterF, augment_epochs=0, alpha=1.0, beta=1.0, search_hp=False)
    fixed.context.validation = f.context.validation
    fixed.prepare([(images, labels)])
    fixed.after_training()
    assert (float(fixed.alpha), float(fixed.beta)) == (1.0, 1.0) and not fixed.reports_final_epoch()


@pytest.mark.parametrize("cls", [ClipAdapter, TipAdapter, TipAdapterF])
def test_upgrade_carries_the_module_unchanged_onto_v2_features_and_head(cls) -> None:
    method = make(cls, upgrade_model="zoo/tiny-clip-v2")
    images, labels = split("train", per_class=1)
    method.prepare([(images, labels)])
    with torch.no_grad():
        for parameter in method.parameters():
            if parameter.requires_grad:
                parameter.add_(0.1)
    v2 = load_clip("zoo/tiny-clip-v2")
    twin = method.upgraded(v2)
    assert twin.context.bundle is v2 and twin.model is v2.model
    for name, value in method.carried_state().items():
        assert torch.equal(twin.state_dict()[name], value), name
    torch.testing.assert_close(twin.head, zero_shot_head(v2.model, v2.tokenizer, CLASSES, twin_templates(method)))
    assert not torch.equal(twin.head, method.head)


def twin_templates(method: ImageAdapter) -> list[str]:
    return list(CLASS_TEMPLATES) if method.params.templates == "ensemble" else [method.params.template]


def test_an_upgrade_with_other_image_features_is_refused() -> None:
    method = make(ClipAdapter)
    with pytest.raises(InputError) as error:
        method.check_feature_dim("other", 32)
    assert error.value.where == "upgrade_model" and "dimension 32" in error.value.message


@pytest.mark.parametrize("name", ["clip_adapter", "tip_adapter"])
def test_compat_metrics_after_a_tiny_trial(name: str) -> None:
    metrics = run(
        {
            "method": name,
            "data": DATA,
            "train": {"epochs": 1, "batch_size": 20},
            "params": {"upgrade_model": "zoo/tiny-clip-v2", "augment_epochs": 1}
            if name == "tip_adapter"
            else {"upgrade_model": "zoo/tiny-clip-v2"},
        }
    )
    names = ["compat/v1/acc", "compat/v2/acc", "compat/hmean", "compat/v1/zs_acc", "compat/v2/zs_acc"]
    assert all(0 <= metrics[n] <= 1 for n in names)
    assert metrics["compat/v1/acc"] == pytest.approx(metrics["id/acc"])
    a, b = metrics["compat/v1/acc"], metrics["compat/v2/acc"]
    assert metrics["compat/hmean"] == pytest.approx(2 * a * b / (a + b))
    assert "compat/v2/ood_avg_acc" in metrics


def test_validation_accepts_upgrade_model_and_compat_objectives_for_the_adapters(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec = {
        "name": "adapters-compat",
        "method": {"grid": ["coop", "clip_adapter", "tip_adapter", "tip_adapter_f"]},
        "model": "zoo/tiny-clip-v1",
        "data": DATA,
        "fixed": {"upgrade_model": "zoo/tiny-clip-v2"},
        "objective": {"metric": "compat/hmean", "mode": "max", "oracle": True},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    assert main(["validate", str(REPO / "search_spaces" / "paper-contcoop.yaml")]) == 0, capsys.readouterr().err
    spec["fixed"] = {"upgrade_model": "zoo/tiny-clip-v9"}
    path.write_text(yaml.safe_dump(spec))
    assert main(["validate", str(path)]) == 2
    assert "fixed.upgrade_model" in capsys.readouterr().err


def test_sweeper_methods_lists_the_adapters(capsys: pytest.CaptureFixture) -> None:
    assert main(["methods", "*adapter*", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"clip_adapter", "tip_adapter", "tip_adapter_f"}
    assert data["clip_adapter"]["parameters"]["ratio"]["default"] == 0.2
    assert data["tip_adapter"]["trains"] is False and data["tip_adapter_f"]["trains"] is True
    assert data["tip_adapter_f"]["recipes"]["clip"]["epochs"] == 20 and "Zhang" in data["tip_adapter"]["paper"]
