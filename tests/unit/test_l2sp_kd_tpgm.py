"""L2-SP, KD and TPGM: penalties and projections against hand computations, and each changes what
its paper says it changes, compared with FT on the same seed and batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from method_steps import TINY, build_tiny, loss_steps, tiny_batch

from sweeper.cli import main
from trainables.loop import run
from trainables.methods.tpgm import deviation_norms, project, projection_ratio, shuffled_batches

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]


def _tower_distance(method, zero_shot: dict[str, torch.Tensor]) -> float:
    current = dict(method.model.visual.named_parameters())
    return math.sqrt(sum(((current[n] - t) ** 2).sum().item() for n, t in zero_shot.items()))


def _visual(method) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in method.model.visual.named_parameters()}


# -- L2-SP ----------------------------------------------------------------------------------------


def test_l2sp_penalty_matches_a_hand_computation() -> None:
    method = build_tiny("l2sp")
    matrix, bias = method.model.visual.proj, method.model.visual.ln_post.bias
    assert matrix.dim() == 2 and bias.dim() == 1
    with torch.no_grad():
        matrix[0, 0] += 0.3
        matrix[1, 2] -= 0.4
        bias[0] += 2.0  # a 1-dim tensor: outside the default ``tensors: weights``
        method.head[0, 0] += 1.0
    sp, head = method.penalty()
    assert sp.item() == pytest.approx(0.3**2 + 0.4**2, rel=1e-4)
    assert head.item() == pytest.approx((method.head**2).sum().item(), rel=1e-6)
    images, labels = tiny_batch()
    terms = method.training_loss(images, labels)
    expected = terms["ce"] + 0.1 / 2 * sp + 0.01 / 2 * head  # the official alpha = 0.1, beta = 0.01
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)

    anchored_head = build_tiny("l2sp", tensors="all", head="sp")
    with torch.no_grad():
        anchored_head.model.visual.ln_post.bias[0] += 2.0
        anchored_head.head[0, 0] += 1.0
    sp, head = anchored_head.penalty()
    assert sp.item() == pytest.approx(2.0**2 + 1.0**2, rel=1e-4) and head.item() == 0.0


def test_l2sp_keeps_the_tower_closer_to_theta0_than_ft_on_the_same_seed() -> None:
    distances = {}
    for name, params in (("ft", {}), ("l2sp", {"lam": 100.0})):
        method = build_tiny(name, **params)
        zero_shot = _visual(method)
        loss_steps(method, 8, reseed=True)
        distances[name] = _tower_distance(method, zero_shot)
    assert 0 < distances["l2sp"] < 0.8 * distances["ft"], distances


# -- KD -------------------------------------------------------------------------------------------


def test_kd_terms_match_explicit_sums_and_start_at_zero() -> None:
    method = build_tiny("kd", tau=2.0)
    assert loss_steps(method, 1, reseed=True)[0]["kd"] == pytest.approx(
        0.0, abs=1e-6
    )  # the same tower on the same batch
    loss_steps(method, 3, reseed=True)
    images, labels = tiny_batch()
    method.eval()
    terms = method.training_loss(images, labels)
    with torch.no_grad():
        features = method.image_features(images)
        reference = torch.nn.functional.normalize(method.visual_zero_shot(images), dim=-1)
        z, z0 = method.scale * features @ method.head, method.scale * reference @ method.head_zero_shot
        p0, p = torch.softmax(z0 / 2, dim=1), torch.softmax(z / 2, dim=1)
        kl = 4 * (p0 * (p0.log() - p.log())).sum(dim=1).mean()
    assert terms["kd"].item() == pytest.approx(kl.item(), rel=1e-4) and kl.item() > 0

    method = build_tiny("kd", target="features")
    loss_steps(method, 3, reseed=True)
    method.eval()
    terms = method.training_loss(images, labels)
    with torch.no_grad():
        features = method.image_features(images)
        reference = torch.nn.functional.normalize(method.visual_zero_shot(images), dim=-1)
        cosine = (features * reference).sum(dim=1)
    assert terms["kd"].item() == pytest.approx((2 - 2 * cosine).mean().item(), rel=1e-3)


@pytest.mark.parametrize("target", ["logits", "features"])
def test_kd_keeps_the_model_closer_to_zero_shot_than_ft(target: str) -> None:
    images, _ = tiny_batch()
    gaps = {}
    for name, params in (("ft", {}), ("kd", {"lam": 10.0, "target": target})):
        method = build_tiny(name, **params)
        teacher = build_tiny("kd", target=target)  # a fresh zero-shot model: the yardstick for both
        loss_steps(method, 8, reseed=True)
        method.eval()
        with torch.no_grad():
            if target == "logits":
                p0 = torch.softmax(teacher.logits(images), dim=1)
                p = torch.softmax(method.logits(images), dim=1)
                gaps[name] = (p0 * (p0.log() - p.log())).sum(dim=1).mean().item()
            else:
                gaps[name] = (
                    (method.image_features(images) - teacher.image_features(images)).pow(2).sum(1).mean().item()
                )
    assert 0 < gaps["kd"] < 0.8 * gaps["ft"], gaps


# -- TPGM -----------------------------------------------------------------------------------------


def test_projection_pulls_a_layer_outside_its_radius_onto_the_ball_and_leaves_one_inside() -> None:
    anchor = torch.tensor([1.0, 1.0])
    theta = torch.tensor([4.0, 5.0])  # delta (3, 4): L2 norm 5
    assert torch.allclose(project(theta, anchor, torch.tensor(2.5), "l2"), torch.tensor([2.5, 3.0]))
    assert torch.equal(project(theta, anchor, torch.tensor(10.0), "l2"), theta)

    # MARS: each row's L1 norm (4 and 1) against the one radius; L2: the whole tensor's norm.
    anchor = torch.zeros(2, 2)
    theta = torch.tensor([[3.0, -1.0], [0.5, 0.5]])
    mars = project(theta, anchor, torch.tensor(2.0), "mars")
    assert torch.allclose(mars, torch.tensor([[1.5, -0.5], [0.5, 0.5]]))
    l2 = project(theta, anchor, torch.tensor(2.0), "l2")
    assert torch.allclose(l2, theta * 2.0 / math.sqrt(10.5), atol=1e-6)
    assert deviation_norms(torch.tensor([1.0, -2.0, 3.0]), "mars").tolist() == [6.0]  # a bias: its L1 norm


def test_radius_gets_a_gradient_only_while_the_projection_is_active() -> None:
    norms = torch.tensor([[4.0], [1.0]])
    radius = torch.tensor(2.0, requires_grad=True)
    projection_ratio(radius, norms).sum().backward()
    assert radius.grad is not None and radius.grad.item() == pytest.approx(1 / 4, rel=1e-6)  # only row 1
    inside = torch.tensor(5.0, requires_grad=True)
    projection_ratio(inside, norms).sum().backward()
    assert inside.grad is not None and inside.grad.item() == 0.0


def test_tpgm_without_radius_steps_is_wise_at_one_half() -> None:
    method = build_tiny("tpgm", max_iters=0)
    zero_shot = {n: t.clone() for n, t in method.anchor.items()}
    loss_steps(method, 3, reseed=True)
    trained = {n: p.detach().clone() for n, p in method.named_parameters() if n in zero_shot}
    method.after_training()  # L2 radii start at half of each layer's distance
    for name, parameter in method.named_parameters():
        if name in zero_shot:
            expected = zero_shot[name] + 0.5 * (trained[name] - zero_shot[name])
            assert torch.allclose(parameter, expected, atol=1e-6), name


def test_tpgm_learns_radii_on_validation_batches_and_keeps_layers_inside_them() -> None:
    method = build_tiny("tpgm", max_iters=30, proj_lr=1e-3, project_head=False)  # one batch: all of val
    assert method.context.validation is not None and method.context.validation.split == "val"
    zero_shot = _visual(method)
    loss_steps(method, 6, reseed=True)
    before = _tower_distance(method, zero_shot)
    head = method.head.detach().clone()
    method.after_training()
    after = _tower_distance(method, zero_shot)
    assert after < before
    assert torch.equal(method.head, head)  # project_head false: the fine-tuned head stays
    assert "head" not in method.anchor and "head" not in "".join(method.radii_rows)
    metrics = method.posthoc_metrics(lambda m: {})
    assert 0 <= metrics["tpgm/ratio_min"] <= metrics["tpgm/ratio_mean"] <= 1
    assert metrics["tpgm/val_ce_last"] < metrics["tpgm/val_ce_first"]  # the radii fit validation CE


def test_validation_batches_cover_the_split_in_a_seeded_order() -> None:
    method = build_tiny("tpgm")
    split = method.context.validation
    first = shuffled_batches(split, method.context.bundle, 4, torch.Generator().manual_seed(0))
    again = shuffled_batches(split, method.context.bundle, 4, torch.Generator().manual_seed(0))
    labels = torch.cat([next(first)[1] for _ in range(math.ceil(len(split) / 4))])
    assert sorted(labels.tolist()) == sorted(split.labels.tolist())
    assert torch.equal(next(again)[1], labels[:4])


def test_tpgm_trial_reports_its_projected_last_epoch_and_radii() -> None:
    artifacts: dict[str, str] = {}
    config = {
        "method": "tpgm",
        "data": {"source": TINY, "id": "photo", "ood": ["sketch"]},
        "train": {"epochs": 2, "batch_size": 20},
        "params": {"max_iters": 5},
        "seed": 0,
    }
    summary = run(config, artifacts=lambda name, text: artifacts.__setitem__(name, text))
    assert summary["best_epoch"] == 1  # the projected model, never an earlier FT epoch
    assert all(math.isfinite(summary[k]) for k in ("tpgm/ratio_mean", "tpgm/val_ce_last", "id/acc"))
    rows = artifacts["tpgm_radii.csv"].splitlines()
    assert rows[0] == "layer,max_norm,radius,mean_ratio" and rows[1].startswith("head,")


def test_tpgm_metrics_are_an_objective_for_tpgm_sweeps_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shipped = yaml.safe_load((ROOT / "search_spaces" / "tpgm.yaml").read_text())
    for method, code in (("tpgm", 0), ("ft", 2)):
        spec = {**shipped, "method": method, "fixed": {}, "search": {}, "report": {"rows": [], "metrics": ["id/acc"]}}
        spec["objective"] = {"metric": "tpgm/val_ce_last", "mode": "min"}
        path = tmp_path / f"{method}.yaml"
        path.write_text(yaml.safe_dump(spec))
        assert main(["validate", str(path)]) == code
    assert "never logs 'tpgm/val_ce_last'" in capsys.readouterr().err
