"""LoRA machinery, CLIP-LoRA and LoRSU: hand computations on small tensors, merge equivalence,
LoRSU's structured updates (bitwise), its parameter accounting, and a LoRA trial."""

from __future__ import annotations

import json
import math

import pytest
import torch

from trainables.data.shapes_source import ShapesSource
from trainables.data.shapes_world import ShapesConfig
from trainables.data.transforms import normalize_batch
from trainables.errors import InputError
from trainables.loop import run
from trainables.methods.base import TrialContext
from trainables.methods.lora import LoRA, LoRAParams
from trainables.methods.lorsu import LoRSU, LoRSUParams, head_rows, head_scores, top_fraction_mask
from trainables.models import zoo
from trainables.models.heads import zero_shot_head
from trainables.models.loading import load_clip
from trainables.models.lora import LoRAAttention, LowRankDelta, add_lora, lora_of, merge_lora

torch.set_num_threads(1)
SHAPES = ShapesSource(ShapesConfig(per_class={"train": 4, "val": 1, "test": 5}))

# tiny-clip-v1's image-tower width (4 layers of 32-wide heads) and text tower (3 layers of width
# 64); the hand counts below follow them.
CONFIG = json.loads(zoo.config_path("tiny-clip-v1").read_text())
WIDTH = CONFIG["vision_cfg"]["width"]
TEXT_LAYERS, TEXT_WIDTH = CONFIG["text_cfg"]["layers"], CONFIG["text_cfg"]["width"]


def _context() -> TrialContext:
    bundle = load_clip("zoo/tiny-clip-v1", torch.device("cpu"))
    return TrialContext(
        bundle, SHAPES.classnames, SHAPES.templates, torch.Generator().manual_seed(0), torch.device("cpu")
    )


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    split = SHAPES.split("photo", "train")
    return normalize_batch(split.images[:20]), split.labels[:20]


def test_head_scores_match_a_hand_computation() -> None:
    # 2 heads of 1 row each, D = 2: rows q0, q1, k0, k1, v0, v1.
    grad = torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])
    # head 0: q0, k0, v0 -> 1+4 + 9 + 0 = 14; head 1: q1, k1, v1 -> 1 + 2 + 8 = 11.
    assert head_scores(grad, heads=2).tolist() == [14.0, 11.0]
    # 1 head owning all rows: the squared Frobenius norm of the whole gradient.
    assert head_scores(grad, heads=1).item() == grad.pow(2).sum().item()


def test_head_rows_select_q_k_v_rows_of_the_chosen_heads() -> None:
    mask = head_rows(torch.tensor([0, 2]), heads=3, head_dim=2)
    expected = [1, 1, 0, 0, 1, 1] * 3  # per projection: head 0 rows, head 1 rows, head 2 rows
    assert mask.tolist() == [bool(x) for x in expected]


def test_fc1_mask_keeps_the_top_fraction_by_magnitude() -> None:
    grad = torch.tensor([[0.1, -5.0, 0.3], [2.0, -0.2, 0.0], [1.0, 0.4, -3.0]])
    mask = top_fraction_mask(grad, 0.4)  # int(0.4 * 9) = 3 entries: -5, -3, 2
    assert mask.tolist() == [[False, True, False], [True, False, False], [False, False, True]]
    assert top_fraction_mask(grad, 1.0).all() and not top_fraction_mask(grad, 0.1).any()


def test_delta_starts_at_zero_masks_rows_inside_the_product_and_merges_exactly() -> None:
    torch.manual_seed(0)
    for zero in ("A", "B"):
        delta = LowRankDelta(6, 4, rank=2, alpha=3.0, zero=zero)
        assert torch.equal(delta.delta(), torch.zeros(6, 4))
        kaiming = delta.B if zero == "A" else delta.A
        assert kaiming.abs().max() <= 1 / math.sqrt(kaiming.shape[1]) and kaiming.abs().sum() > 0
    assert LowRankDelta(6, 4, 4, 2.0).scale == 0.5
    assert LowRankDelta(6, 4, 4, 2.0, rank_stabilised=True).scale == 1.0

    linear = torch.nn.Linear(4, 6)
    row_mask = torch.tensor([1, 0, 1, 0, 0, 1], dtype=torch.bool)
    delta = add_lora(linear, "weight", rank=2, alpha=2.0, row_mask=row_mask)
    torch.nn.init.normal_(delta.B)
    x = torch.randn(5, 4)
    linear(x).pow(2).sum().backward()
    assert (delta.A.grad[~row_mask] == 0).all() and (delta.A.grad[row_mask] != 0).any()
    assert (delta.delta()[~row_mask] == 0).all()
    with torch.no_grad():
        before = linear(x)
    merge_lora(linear, "weight")
    assert set(dict(linear.named_parameters())) == {"weight", "bias"}
    torch.testing.assert_close(linear(x), before, rtol=0, atol=1e-6)


def test_lora_attention_equals_the_wrapped_module_and_merges() -> None:
    torch.manual_seed(0)
    for batch_first in (True, False):
        mha = torch.nn.MultiheadAttention(12, 3, batch_first=batch_first).eval()
        x = torch.randn(2, 5, 12) if batch_first else torch.randn(5, 2, 12)
        causal = torch.full((5, 5), float("-inf")).triu(1)
        with torch.no_grad():
            reference = mha(x, x, x, need_weights=False, attn_mask=causal)[0]
        wrapped = LoRAAttention(mha, rank=2, alpha=1.0, dropout=0.25).eval()
        with torch.no_grad():
            torch.testing.assert_close(wrapped(x, x, x, attn_mask=causal)[0], reference, rtol=0, atol=1e-6)
            for delta in (wrapped.q, wrapped.k, wrapped.v):
                torch.nn.init.normal_(delta.A)
            adapted = wrapped(x, x, x, attn_mask=causal)[0]
            assert (adapted - reference).abs().max() > 1e-3
            torch.testing.assert_close(
                wrapped.merged()(x, x, x, need_weights=False, attn_mask=causal)[0], adapted, rtol=0, atol=1e-5
            )


@pytest.mark.parametrize("towers", ["image", "both"])
def test_lora_method_merges_into_the_weights_without_changing_its_outputs(towers: str) -> None:
    torch.manual_seed(0)
    method = LoRA(_context(), LoRAParams(towers=towers)).eval()
    trained = {n for n, p in method.named_parameters() if p.requires_grad}
    assert trained and all(n.split(".")[-1] in {"A", "B"} and ".attn." in n for n in trained)
    text = TEXT_LAYERS * 3 * 2 if towers == "both" else 0
    assert len(trained) == 4 * 3 * 2 + text
    metrics = method.parameter_metrics()
    assert metrics["params/trainable"] == 4 * 3 * 2 * (WIDTH + WIDTH) + text * 2 * TEXT_WIDTH
    visual = sum(p.numel() for p in method.context.bundle.model.visual.parameters() if not p.requires_grad)
    assert metrics["params/visual_fraction"] == pytest.approx(4 * 3 * 2 * 2 * WIDTH / visual)
    images, _ = _batch()
    with torch.no_grad():
        zero_shot = method.logits(images)
        for name, p in method.named_parameters():
            if name in trained:
                p.normal_(0, 0.1)
        method.eval()  # a new evaluation: the adapted text tower's head is rebuilt
        before = method.logits(images)
    assert (before - zero_shot).abs().max() > 1e-3
    method.after_training()
    blocks = [*method.model.visual.transformer.resblocks, *method.model.transformer.resblocks]
    assert all(type(b.attn) is torch.nn.MultiheadAttention for b in blocks)
    with torch.no_grad():
        torch.testing.assert_close(method.logits(images), before, rtol=0, atol=1e-5)
    # The merged checkpoint loads into a fresh (unmerged) method and gives the same outputs.
    fresh = LoRA(_context(), LoRAParams(towers=towers)).eval()
    fresh.load_state_dict(method.trainable_state(), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(fresh.logits(images), before, rtol=0, atol=1e-5)


@pytest.mark.parametrize("towers", ["both", "image"])
def test_lora_training_moves_the_towers_it_adapts_and_merges_them(towers: str) -> None:
    context = _context()
    model = context.bundle.model
    images, labels = _batch()
    tokens = context.bundle.tokenizer([f"a photo of a {c}." for c in SHAPES.classnames])
    model.eval()
    with torch.no_grad():
        image_before, text_before = model.encode_image(images).clone(), model.encode_text(tokens).clone()
    torch.manual_seed(0)
    method = LoRA(context, LoRAParams(towers=towers))
    optimizer = torch.optim.AdamW(method.parameter_groups(), lr=1e-2, weight_decay=0.0)
    method.train()
    for _ in range(3):
        loss = method.training_loss(images, labels)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    method.after_training()  # merged: the plain open_clip model now carries the updates
    blocks = [*model.visual.transformer.resblocks, *model.transformer.resblocks]
    assert all(type(b.attn) is torch.nn.MultiheadAttention for b in blocks)
    model.eval()
    with torch.no_grad():
        image_after, text_after = model.encode_image(images), model.encode_text(tokens)
    assert (image_after - image_before).abs().max() > 1e-4
    if towers == "both":
        assert (text_after - text_before).abs().max() > 1e-4
        with torch.no_grad():  # evaluation classifies with the adapted text tower's head
            head = zero_shot_head(model, context.bundle.tokenizer, SHAPES.classnames, SHAPES.templates)
            torch.testing.assert_close(method.eval().class_weights(), head, rtol=0, atol=1e-6)
    else:
        assert torch.equal(text_after, text_before)
    with pytest.raises(ValueError, match="train_head"):
        LoRAParams(train_head=True)


def test_lorsu_changes_only_selected_heads_fc1_entries_biases_and_proj() -> None:
    context = _context()
    original = {k: v.detach().clone() for k, v in context.bundle.model.state_dict().items()}
    params = LoRSUParams(k=1, sparsity=0.1, rank=4, alpha=4.0, importance_samples=30)
    method = LoRSU(context, params)
    images, labels = _batch()
    method.prepare([(images[:10], labels[:10]), (images[10:], labels[10:])])
    heads, fc1_mask = method.heads.clone(), method.fc1_mask.clone()
    assert heads.shape == (4, 1) and (fc1_mask.flatten(1).sum(1) == int(0.1 * 4 * WIDTH * WIDTH)).all()
    # Weight decay on, to show the masked fc1 entries are still left bitwise alone.
    optimiser = torch.optim.AdamW(method.parameter_groups(), lr=1e-2, weight_decay=0.1)
    method.train()
    for _ in range(3):
        optimiser.zero_grad(set_to_none=True)
        method.training_loss(images, labels)["loss"].backward()
        optimiser.step()
    method.after_training()
    merged = method.model.state_dict()
    assert set(merged) == set(original)
    prefix = "visual.transformer.resblocks"
    names = ("attn.in_proj_weight", "attn.in_proj_bias", "mlp.c_fc.weight", "mlp.c_fc.bias")
    may_change = {"visual.proj"} | {f"{prefix}.{i}.{n}" for i in range(4) for n in names}
    for key, value in original.items():
        if key not in may_change:
            assert torch.equal(merged[key], value), key
    assert not torch.equal(merged["visual.proj"], original["visual.proj"])
    for i in range(4):
        rows = head_rows(heads[i], WIDTH // 32, 32)
        qkv, qkv0 = merged[f"{prefix}.{i}.attn.in_proj_weight"], original[f"{prefix}.{i}.attn.in_proj_weight"]
        assert torch.equal(qkv[~rows], qkv0[~rows]) and not torch.equal(qkv[rows], qkv0[rows])
        fc1, fc10 = merged[f"{prefix}.{i}.mlp.c_fc.weight"], original[f"{prefix}.{i}.mlp.c_fc.weight"]
        assert torch.equal(fc1[~fc1_mask[i]], fc10[~fc1_mask[i]]) and not torch.equal(fc1, fc10)
        for bias in ("attn.in_proj_bias", "mlp.c_fc.bias"):
            assert not torch.equal(merged[f"{prefix}.{i}.{bias}"], original[f"{prefix}.{i}.{bias}"])


def test_lorsu_selects_heads_by_the_mean_clip_gradient_and_restores_from_checkpoints() -> None:
    method = LoRSU(_context(), LoRSUParams(k=2))
    images, labels = _batch()
    torch.manual_seed(3)
    method.prepare([(images, labels)])
    # Recompute the gradient the same way (same template draw) and check the choice.
    torch.manual_seed(3)
    weights = [b.attn.parametrizations.in_proj_weight.original for b in method.blocks]
    for w in weights:
        w.requires_grad_(True)
    grads = torch.autograd.grad(method.eval().contrastive_loss(images, labels), weights)
    for layer, grad in enumerate(grads):
        assert method.heads[layer].tolist() == sorted(head_scores(grad, WIDTH // 32).topk(2).indices.tolist())
        assert torch.equal(
            lora_of(method.blocks[layer].attn, "in_proj_weight").row_mask,
            head_rows(method.heads[layer], WIDTH // 32, 32),
        )
    for w in weights:
        w.requires_grad_(False)
    # A fresh method restores heads, masks and trained values from the checkpointed state.
    with torch.no_grad():
        for block in method.blocks:
            lora_of(block.attn, "in_proj_weight").B.normal_()
        expected = method.logits(images)
    fresh = LoRSU(_context(), LoRSUParams(k=2)).eval()
    fresh.load_state_dict(method.trainable_state(), strict=False)
    assert torch.equal(fresh.heads, method.heads) and torch.equal(fresh.fc1_mask, method.fc1_mask)
    for mine, theirs in zip(fresh.blocks, method.blocks, strict=True):  # row masks are re-derived on load
        mask, their_mask = (lora_of(b.attn, "in_proj_weight").row_mask for b in (mine, theirs))
        assert torch.equal(mask, their_mask)
    with torch.no_grad():
        torch.testing.assert_close(fresh.logits(images), expected, rtol=0, atol=1e-6)


def test_lorsu_counts_effective_parameters_and_rejects_too_many_heads() -> None:
    method = LoRSU(_context(), LoRSUParams())  # r = 8, k = 1, sparsity = 0.1 on tiny-clip-v1
    method.prepare([_batch()])
    layers, width, fc1 = 4, WIDTH, 4 * WIDTH * WIDTH
    rows = 3 * 1 * 32  # q, k, v rows of one 32-wide head
    biases = layers * (3 * width + 4 * width)
    expected = layers * int(0.1 * fc1) + layers * 8 * (rows + width) + 8 * (width + 64) + biases
    # The same number counted from the actual masks and factors.
    counted = int(method.fc1_mask.sum())
    for block in method.blocks:
        delta = lora_of(block.attn, "in_proj_weight")
        counted += int(delta.row_mask.sum()) * 8 + delta.B.numel()
        counted += block.attn.in_proj_bias.numel() + block.mlp.c_fc.bias.numel()
    counted += sum(p.numel() for p in method.model.visual.parametrizations.proj[0].parameters())
    assert counted == expected
    metrics = method.parameter_metrics()
    assert metrics["params/trainable"] == expected
    model = _context().bundle.model
    assert metrics["params/trainable_fraction"] == pytest.approx(expected / sum(p.numel() for p in model.parameters()))
    assert metrics["params/visual_fraction"] == pytest.approx(
        expected / sum(p.numel() for p in model.visual.parameters())
    )
    with pytest.raises(InputError, match="heads") as error:
        LoRSU(_context(), LoRSUParams(k=WIDTH // 32 + 1))
    assert error.value.where == "k"
    with pytest.raises(ValueError):
        LoRSUParams(sparsity=0.0)


def test_lora_trial_returns_finite_metrics() -> None:
    source = {"shapes": {"per_class": {"train": 4, "val": 1, "test": 5}}}
    metrics = run(
        {
            "method": "lora",
            "data": {"source": source, "id": "photo", "ood": ["sketch"]},
            "train": {"epochs": 1, "batch_size": 20},
        }
    )
    assert metrics and all(math.isfinite(v) for v in metrics.values())
    assert metrics["params/trainable"] == 4 * 3 * 2 * 2 * WIDTH + TEXT_LAYERS * 3 * 2 * 2 * TEXT_WIDTH
