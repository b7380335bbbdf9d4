"""FLYP, DiVE and CAR-FT: loss terms against hand computations, reference pairs, a short trial."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from method_steps import TINY, build_tiny, loss_steps, tiny_batch
from PIL import Image

from trainables.config import TrialConfig
from trainables.data.reference_pairs import CaptionFilePairs, read_caption_file, reference_pairs
from trainables.errors import InputError
from trainables.loop import run
from trainables.methods._contrastive import MAX_LOG_SCALE, class_captions
from trainables.methods.car_ft import CarFtParams, context_kl
from trainables.methods.dive import DiveParams, difference_vector_losses, ema_update
from trainables.models.heads import zero_shot_head

torch.set_num_threads(1)


# -- DiVE's loss terms ---------------------------------------------------------------------------


def test_avl_and_pvl_match_a_hand_computation() -> None:
    u = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    m = torch.tensor([1.0, 0.0])
    # ||u - m||^2: 0, 5; ||v - m||^2: 1, 1  ->  AVL = (0 + 1 + 5 + 1) / 2 = 3.5
    # ||u - v||^2: 1, 4                     ->  PVL = (1 + 4) / 2 = 2.5
    avl, pvl = difference_vector_losses(u, v, m)
    assert avl.item() == pytest.approx(3.5)
    assert pvl.item() == pytest.approx(2.5)


def test_a_rigid_shared_translation_costs_nothing() -> None:
    shift = torch.randn(6)
    u = v = shift.expand(4, 6)
    avl, pvl = difference_vector_losses(u, v, shift)
    assert avl.item() == pytest.approx(0.0, abs=1e-6) and pvl.item() == 0.0


def test_ema_update_moves_m_towards_the_batch_mean_without_gradient() -> None:
    m = torch.tensor([1.0, 0.0])
    u = torch.tensor([[2.0, 0.0], [0.0, 2.0]], requires_grad=True)
    v = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    # mean_j (u_j + v_j) / 2 = ([1, 0] + [1, 2]) / 2 = [1, 1]; 0.9 * [1, 0] + 0.1 * [1, 1] = [1, 0.1]
    updated = ema_update(m, u, v, alpha=0.9)
    assert torch.allclose(updated, torch.tensor([1.0, 0.1]))
    assert not updated.requires_grad
    assert torch.allclose(ema_update(m, u, v, alpha=0.0), torch.tensor([1.0, 1.0]))


# -- CAR-FT's context KL -------------------------------------------------------------------------


def test_context_kl_matches_explicit_sums_in_both_directions() -> None:
    v = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.0, -1.0]])  # fine-tuned
    v0 = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # zero-shot

    def kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> float:
        total = 0.0
        for row_p, row_q in zip(p_logits.softmax(dim=1).tolist(), q_logits.softmax(dim=1).tolist(), strict=True):
            total += sum(p * math.log(p / q) for p, q in zip(row_p, row_q, strict=True))
        return total / len(p_logits)

    assert context_kl(v, v0, "zs_to_ft").item() == pytest.approx(kl(v0, v), rel=1e-5)
    assert context_kl(v, v0, "ft_to_zs").item() == pytest.approx(kl(v, v0), rel=1e-5)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=v0), torch.distributions.Categorical(logits=v)
    ).mean()
    assert context_kl(v, v0, "zs_to_ft").item() == pytest.approx(reference.item(), rel=1e-5)


def test_car_ft_starts_at_zero_kl_and_trains_only_the_image_tower_and_head() -> None:
    assert CarFtParams() == CarFtParams(lam=1.0, scale_c=None, direction="zs_to_ft")
    with pytest.raises(ValueError):
        CarFtParams(direction="both")
    method = build_tiny("car_ft", scale_c=100.0)
    assert method.context_weights.shape == (64, len(method.context.templates))
    text_before = method.model.transformer.resblocks[0].attn.in_proj_weight.clone()
    history = loss_steps(method, 3, lr=1e-4)
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the same tower on the same batch
    assert history[-1]["kl"] > 0 and history[-1]["ce"] < history[0]["ce"]
    assert torch.equal(method.model.transformer.resblocks[0].attn.in_proj_weight, text_before)
    assert all(not p.requires_grad for p in method.visual_zero_shot.parameters())


def _gradient_norms(method) -> tuple[float, float]:
    """Norms of the gradients of CE and of lam * KL w.r.t. the image tower, on one batch."""
    images, labels = tiny_batch()
    terms = method.training_loss(images, labels)
    tower = [p for p in method.model.visual.parameters() if p.requires_grad]
    ce = torch.autograd.grad(terms["ce"], tower, retain_graph=True)
    kl = torch.autograd.grad(method.params.lam * terms["kl"], tower)
    return tuple(torch.sqrt(sum((g**2).sum() for g in grads)).item() for grads in (ce, kl))


def test_car_ft_default_scale_is_the_models_so_the_kl_gradient_is_not_negligible() -> None:
    # At s_c = 1 (the old default) cosines in [-1, 1] give near-uniform context softmaxes, so the
    # KL and its gradient are ~s_c^2 smaller than at CLIP's own temperature: the term is off.
    ratios = {}
    for scale_c in (None, 1.0):
        method = build_tiny("car_ft", **({} if scale_c is None else {"scale_c": scale_c}))
        loss_steps(method, 3, lr=1e-4)  # move theta away from theta_0, where the KL is 0
        ce, kl = _gradient_norms(method)
        ratios[scale_c] = kl / ce
    assert ratios[None] > 5e-2, ratios  # the model's s (21.5 on the tiny zoo)
    assert ratios[1.0] < 1e-2, ratios


# -- FLYP ------------------------------------------------------------------------------------------


def test_class_captions_fill_a_seeded_random_template_with_each_class() -> None:
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    templates = ("a {}.", "a photo of a {}.", "a sketch of a {}.")
    first = class_captions(labels, ("cat", "dog"), templates, torch.Generator().manual_seed(3))
    again = class_captions(labels, ("cat", "dog"), templates, torch.Generator().manual_seed(3))
    assert first == again and len(first) == 8
    assert all(
        c.endswith(("cat.", "dog.")) and c.endswith(("cat.", "dog.")[y])
        for c, y in zip(first, labels.tolist(), strict=True)
    )
    assert len(set(first)) > 2  # templates vary across images


def test_flyp_loss_falls_and_both_towers_and_the_scale_change() -> None:
    method = build_tiny("flyp")
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    history = loss_steps(method, 6)
    assert history[-1]["flyp"] < history[0]["flyp"]
    changed = {k for k, v in method.model.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("visual.") for k in changed)
    assert any(k.startswith("transformer.") for k in changed)
    assert "logit_scale" in changed
    assert method.model.logit_scale.item() <= MAX_LOG_SCALE + 1e-3  # clamped before each step


def test_flyp_evaluates_with_the_head_of_the_current_text_tower() -> None:
    method = build_tiny("flyp")
    images, _ = tiny_batch()
    method.eval()
    with torch.no_grad():
        before = method.logits(images[:4])
        bundle = method.context.bundle
        head = zero_shot_head(method.model, bundle.tokenizer, method.context.classnames, method.context.templates)
        features = torch.nn.functional.normalize(method.model.encode_image(images[:4]), dim=-1)
        assert torch.allclose(before, method.model.logit_scale.exp() * features @ head, atol=1e-5)
    loss_steps(method, 2)
    method.eval()  # train() / eval() drop the cached head, so the new text tower is used
    with torch.no_grad():
        after = method.logits(images[:4])
        head = zero_shot_head(method.model, bundle.tokenizer, method.context.classnames, method.context.templates)
        features = torch.nn.functional.normalize(method.model.encode_image(images[:4]), dim=-1)
        assert torch.allclose(after, method.scale() * features @ head, atol=1e-5)
    assert not torch.allclose(before, after)


def test_flyp_trial_reports_finite_metrics() -> None:
    config = {"method": "flyp", "data": {"source": TINY, "id": "photo"}}
    assert TrialConfig.model_validate(config).train.weight_decay == 0.1  # FLYP's recipe, unless set
    metrics = run(
        {
            "method": "flyp",
            "data": {
                "source": {"shapes": {"per_class": {"train": 4, "val": 1, "test": 5}}},
                "id": "photo",
                "ood": ["sketch"],
            },
            "train": {"epochs": 1, "batch_size": 20, "lr": 1e-4},
        }
    )
    for key in ("id/acc", "id/nll", "ood/sketch/acc", "zs/colour/acc", "zs/unseen_shapes/acc", "train/flyp"):
        assert math.isfinite(metrics[key]), key
    assert metrics["params/trainable_fraction"] == pytest.approx(1.0)


# -- DiVE ------------------------------------------------------------------------------------------


def _zoo_bundle(name: str = "zoo/tiny-clip-v1") -> SimpleNamespace:
    return SimpleNamespace(name=name, image_size=32, mean=(0.5,) * 3, std=(0.25,) * 3)


def test_embedded_reference_batches_are_fixed_by_the_seed_and_fresh_each_step() -> None:
    pairs = reference_pairs(None, _zoo_bundle(), "params.reference")
    a, b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    first_images, first_captions = pairs.sample(8, a)
    same_images, same_captions = pairs.sample(8, b)
    assert torch.equal(first_images, same_images) and first_captions == same_captions
    assert first_images.shape == (8, 3, 32, 32) and first_images.dtype == torch.float32
    next_images, _ = pairs.sample(8, a)
    assert not torch.equal(first_images, next_images)
    with pytest.raises(InputError, match="caption file"):
        reference_pairs(None, _zoo_bundle("ViT-B-16@openai"), "params.reference")


def test_dive_terms_start_at_zero_then_grow_and_m_is_checkpointed() -> None:
    assert DiveParams() == DiveParams(lam=1000.0, alpha=0.99, ref_batch_size=64, normalize=True, reference=None)
    with pytest.raises(ValueError):
        DiveParams(alpha=1.0)
    method = build_tiny("dive", ref_batch_size=8)
    frozen = {k: v.clone() for k, v in method.pretrained.state_dict().items()}
    history = loss_steps(method, 2, lr=1e-4)
    assert history[0]["avl"] == pytest.approx(0.0, abs=1e-9) and history[0]["pvl"] == pytest.approx(
        0.0, abs=1e-9
    )  # same weights at init (float noise only)
    assert history[1]["avl"] > 0 and history[1]["pvl"] > 0
    assert history[1]["loss"] == pytest.approx(
        history[1]["flyp"] + 1000 * (history[1]["avl"] + history[1]["pvl"]), rel=1e-4
    )
    assert method.m.abs().sum() > 0 and "m" in method.trainable_state()
    assert all(torch.equal(v, frozen[k]) for k, v in method.pretrained.state_dict().items())
    assert not any(k.startswith("pretrained.") for k in method.trainable_state())


def _caption_folder(root: Path, sep: str = "\t", header: str = "image{sep}caption") -> Path:
    (root / "img").mkdir()
    lines = [header.format(sep=sep)]
    for i, colour in enumerate(("red", "blue", "green")):
        Image.new("RGB", (40, 48), colour).save(root / "img" / f"{i}.png")
        lines.append(f"img/{i}.png{sep}a {colour} square")
    path = root / ("refs.tsv" if sep == "\t" else "refs.csv")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_caption_file_reader_resolves_paths_and_samples_by_seed(tmp_path: Path) -> None:
    path = _caption_folder(tmp_path)
    rows = read_caption_file(path, "params.reference")
    assert rows[1] == (tmp_path / "img" / "1.png", "a blue square")
    pairs = CaptionFilePairs(path, 32, (0.5,) * 3, (0.25,) * 3, "params.reference")
    images, captions = pairs.sample(5, torch.Generator().manual_seed(0))
    again, same = pairs.sample(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 3, 32, 32) and torch.equal(images, again) and captions == same
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    assert len(read_caption_file(_caption_folder(csv_dir, ",", "filepath{sep}title"), "f")) == 3


def test_caption_file_errors_name_the_field_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^params\.reference: caption file .* does not exist"):
        read_caption_file(tmp_path / "none.tsv", "params.reference")
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(InputError, match="header must name an image column"):
        read_caption_file(_caption_folder(bad, "\t", "file{sep}caption"), "params.reference")
    path = _caption_folder(tmp_path)
    (tmp_path / "img" / "2.png").unlink()
    with pytest.raises(InputError, match=r"1 image\(s\) not found, first .*2\.png") as info:
        read_caption_file(path, "params.reference")
    assert info.value.where == "params.reference"
    # Sweep validation (Method.check) reports the same problems under the parameter's own name.
    for reference in (path, tmp_path / "none.tsv"):
        with pytest.raises(InputError) as info:
            DiveParams(reference=str(reference)).check_model(32)
        assert info.value.where == "reference"
    good = tmp_path / "good"
    good.mkdir()
    DiveParams(reference=str(_caption_folder(good))).check_model(32)


def test_dive_trains_on_a_caption_file(tmp_path: Path) -> None:
    method = build_tiny("dive", reference=str(_caption_folder(tmp_path)), ref_batch_size=4, lam=10.0)
    history = loss_steps(method, 2, lr=1e-4)
    assert all(math.isfinite(v) for step in history for v in step.values())
    assert history[1]["pvl"] > 0
