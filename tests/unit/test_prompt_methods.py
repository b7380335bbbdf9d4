"""CoOp, KgCoOp and ContCoOp: fusion and KD against hand computations, the initial prompt equals
the hand-written one, training moves only the prompts, and the model-update compat metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainables.data.captions import CLASS_TEMPLATES
from trainables.data.shapes_world import CLASSES
from trainables.errors import InputError
from trainables.loop import run
from trainables.methods._prompt_learning import PromptLearner, kd_loss, text_dims
from trainables.methods.base import TrialContext
from trainables.methods.contcoop import ContCoOp, ContextFusion
from trainables.methods.coop import CoOp
from trainables.methods.kgcoop import KgCoOp
from trainables.methods.zeroshot import ZeroShot
from trainables.models.heads import zero_shot_head
from trainables.models.loading import load_clip

torch.set_num_threads(1)
# ContCoOp before the paper-following defaults: it starts exactly at KgCoOp's hand-written prompt.
IDENTITY_START = {"residual": True, "attention_init": "identity", "class_embedding": "tokens"}


def make(cls: type[PromptLearner], **params) -> PromptLearner:
    bundle = load_clip("zoo/tiny-clip-v1")
    context = TrialContext(bundle, CLASSES, CLASS_TEMPLATES, torch.Generator().manual_seed(0), torch.device("cpu"))
    return cls(context, cls.Params(**params))


def hand_attention(fusion: ContextFusion, p: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """O[:N] of single-head self-attention over X = [p ; tokens], written out."""
    x = torch.cat([p, tokens])
    q, k, v = (x @ layer.weight.T + layer.bias for layer in (fusion.q, fusion.k, fusion.v))
    weights = torch.softmax(q @ k.T / math.sqrt(x.shape[1]), dim=1)
    out = (weights @ v) @ fusion.o.weight.T + fusion.o.bias
    return out[: len(p)]


@pytest.mark.parametrize("residual", [False, True])
def test_fusion_matches_single_head_attention_for_both_class_embedding_shapes(residual: bool) -> None:
    torch.manual_seed(0)
    fusion = ContextFusion(width=4, residual=residual)
    with torch.no_grad():
        for parameter in fusion.parameters():
            parameter.normal_()
    p = torch.randn(2, 4)
    lengths = torch.tensor([1, 3, 2])
    tokens = torch.randn(3, 3, 4)  # "tokens": L_c x D per class, padded to 3
    mask = torch.arange(3).unsqueeze(0) < lengths.unsqueeze(1)
    out = fusion(p, tokens, mask)
    assert out.shape == (3, 2, 4)
    for c, length in enumerate(lengths.tolist()):
        expected = hand_attention(fusion, p, tokens[c, :length]) + (p if residual else 0)
        torch.testing.assert_close(out[c], expected, rtol=1e-5, atol=1e-5)
    feature = torch.randn(3, 1, 4)  # "text_feature": one vector per class
    out = fusion(p, feature, torch.ones(3, 1, dtype=torch.bool))
    assert out.shape == (3, 2, 4)
    for c in range(3):
        expected = hand_attention(fusion, p, feature[c]) + (p if residual else 0)
        torch.testing.assert_close(out[c], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["tokens", "text_feature"])
def test_contcoop_class_inputs_come_from_the_current_model(variant: str) -> None:
    method = make(ContCoOp, class_embedding=variant)
    classes, mask = method.class_inputs(method.target)
    if variant == "tokens":
        assert classes.shape == (10, 2, 64)  # "ellipse" is two tokens, the others one
        assert mask.sum(dim=1).tolist() == method.target.name_lengths.tolist()
        star = method.model.token_embedding(method.context.bundle.tokenizer(["star"]))[0, 1]
        torch.testing.assert_close(classes[CLASSES.index("star"), 0], star)
    else:
        assert classes.shape == (10, 1, 64) and mask.all()
    assert method.context_vectors(method.target).shape == (10, 4, 64)


def test_kd_term_is_one_minus_mean_cosine() -> None:
    w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    zs = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-3.0, -4.0]])
    expected = 1 - (1.0 + 1 / math.sqrt(2) - 1.0) / 3
    assert kd_loss(w, zs).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (KgCoOp, {}),
        (ContCoOp, IDENTITY_START),
        (ContCoOp, {**IDENTITY_START, "class_embedding": "text_feature"}),
    ],
)
def test_initial_prompt_features_equal_the_hand_written_template(cls, params) -> None:
    method = make(cls, **params)  # ctx from "a photo of a"; ContCoOp's residual attention is zero
    bundle = method.context.bundle
    with torch.no_grad():
        features = method.class_features(method.target)
        tokens = bundle.tokenizer([f"a photo of a {c}." for c in CLASSES])
        expected = F.normalize(bundle.model.encode_text(tokens), dim=-1)
    torch.testing.assert_close(features, expected, rtol=0, atol=1e-5)
    images, labels = torch.randn(4, 3, 32, 32), torch.arange(4)
    assert method.training_loss(images, labels)["kd"].item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (CoOp, {}),
        (KgCoOp, {}),
        (ContCoOp, {}),
        (ContCoOp, {"class_embedding": "tokens"}),
        (ContCoOp, IDENTITY_START),
    ],
)
def test_training_lowers_the_loss_and_leaves_the_towers_bitwise_unchanged(cls, params) -> None:
    method = make(cls, **params)
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    trained = {id(p) for group in method.parameter_groups() for p in group["params"]}
    assert trained == {id(p) for p in method.prompt_parameters()}
    assert not trained & {id(p) for p in method.model.parameters()}
    optimizer = torch.optim.AdamW(method.parameter_groups(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    images, labels = torch.randn(20, 3, 32, 32, generator=gen), torch.arange(10).repeat(2)
    method.train()
    losses = []
    for _ in range(6):
        loss = method.training_loss(images, labels)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for name, value in method.model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in method.model.parameters())


def test_class_features_are_computed_once_per_evaluation(monkeypatch) -> None:
    method = make(CoOp)
    calls = []
    original = method.class_features
    monkeypatch.setattr(method, "class_features", lambda target: calls.append(1) or original(target))
    images = torch.randn(3, 3, 32, 32)
    method.eval()
    first = method.logits(images)
    method.logits(images)
    assert len(calls) == 1 and not first.requires_grad
    with torch.no_grad():  # not a constant shift: every LayerNorm of the tower would remove it
        method.ctx.add_(torch.randn(method.ctx.shape, generator=torch.Generator().manual_seed(2)))
    method.train()  # training invalidates the cache
    method.eval()
    assert not torch.allclose(method.logits(images), first)
    assert len(calls) == 2


def test_parameters_follow_the_papers_defaults_and_bad_inputs_are_rejected() -> None:
    assert (CoOp.Params().n_ctx, CoOp.Params().ctx_init) == (16, "random")
    assert (KgCoOp.Params().n_ctx, KgCoOp.Params().ctx_init, KgCoOp.Params().W) == (4, "a photo of a", 8.0)
    cont = ContCoOp.Params()
    assert (cont.n_ctx, cont.lam, cont.class_embedding, cont.residual, cont.attention_init) == (
        4,
        8.0,
        "text_feature",
        False,
        "kaiming",
    )
    assert KgCoOp.Params().kd_templates == cont.kd_templates == "single"
    with pytest.raises(ValueError):
        ContCoOp.Params(attention_init="orthogonal")
    with pytest.raises(ValueError):
        ContCoOp.Params(class_embedding="pooled")
    with pytest.raises(ValueError):
        KgCoOp.Params(kd_template="a photo of a")
    with pytest.raises(InputError, match="context length"):
        CoOp.Params(n_ctx=30).check_model(context_length=32)
    with pytest.raises(InputError, match="not a zoo model"):
        CoOp.Params(upgrade_model="zoo/tiny-clip-v9").check_model(context_length=32)
    with pytest.raises(InputError, match="n_ctx is 16"):
        make(CoOp, ctx_init="a photo of a")
    # ViT-B-16's text width is 512, read from its config: rejected before training, without weights.
    with pytest.raises(InputError, match="width 512") as error:
        make(ContCoOp, upgrade_model={"arch": "ViT-B-16", "pretrained": "openai"})
    assert error.value.where == "upgrade_model"


def test_contcoop_defaults_start_away_from_kgcoop_and_the_identity_variant_starts_at_it() -> None:
    images = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(4))

    def start(cls: type[PromptLearner], **params) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)  # the attention's Kaiming init draws from the global generator
        method = make(cls, **params).eval()
        with torch.no_grad():
            return method.logits(images), method.class_features(method.target)

    kg_logits, kg_features = start(KgCoOp)
    logits, features = start(ContCoOp)  # O[:N], no residual, Kaiming, E_c = w^zs
    assert (logits - kg_logits).abs().max() > 1e-2
    assert (features - kg_features).abs().max() > 1e-2
    old_logits, old_features = start(ContCoOp, **IDENTITY_START)
    torch.testing.assert_close(old_logits, kg_logits, rtol=0, atol=1e-4)
    torch.testing.assert_close(old_features, kg_features, rtol=0, atol=1e-5)


def test_text_feature_class_embedding_needs_feature_dim_equal_to_token_width() -> None:
    method = make(ContCoOp)  # the default E_c = w^zs: the tiny zoo's embed_dim equals its text width
    assert text_dims(method.model) == (64, 64) and method.params.class_embedding == "text_feature"
    with pytest.raises(InputError, match="text_feature") as error:
        method.check_dims("model", "other", 64, 32)
    assert error.value.where == "class_embedding"
    with pytest.raises(InputError) as error:
        method.check_dims("upgrade_model", "other", 64, 32)
    assert error.value.where == "upgrade_model"
    make(ContCoOp, class_embedding="tokens").check_dims("model", "other", 64, 32)  # tokens: no constraint


@pytest.mark.parametrize("cls", [KgCoOp, ContCoOp])
def test_kd_target_and_zero_shot_reference_share_the_template_set(cls) -> None:
    single, ensemble = make(cls), make(cls, kd_templates="ensemble")
    bundle = single.context.bundle
    heads = {
        name: zero_shot_head(bundle.model, bundle.tokenizer, CLASSES, templates).T
        for name, templates in (("single", ["a photo of a {}."]), ("ensemble", CLASS_TEMPLATES))
    }
    assert len(CLASS_TEMPLATES) > 1 and (heads["single"] - heads["ensemble"]).abs().max() > 1e-3
    for method, name in ((single, "single"), (ensemble, "ensemble")):
        target = method.target.text(method.zero_shot_templates())  # w^zs of the KD term
        torch.testing.assert_close(target, heads[name], rtol=0, atol=1e-5)
        torch.testing.assert_close(method._zero_shot(bundle), heads[name], rtol=0, atol=1e-5)  # compat/*/zs_acc
    if cls is ContCoOp:  # E_c = w^zs of the same set
        classes, _ = ensemble.class_inputs(ensemble.target)
        torch.testing.assert_close(classes[:, 0], heads["ensemble"], rtol=0, atol=1e-5)
    else:  # the hand-written start is the single template exactly: KD 0 only against it
        images, labels = torch.randn(4, 3, 32, 32), torch.arange(4)
        assert single.training_loss(images, labels)["kd"].item() == pytest.approx(0.0, abs=1e-5)
        assert ensemble.training_loss(images, labels)["kd"].item() > 1e-4
    assert make(CoOp).zero_shot_templates() == CLASS_TEMPLATES  # no KD: the ensemble, as zeroshot


def test_zeroshot_method_builds_its_head_from_the_chosen_template_set() -> None:
    bundle = load_clip("zoo/tiny-clip-v1")
    context = TrialContext(bundle, CLASSES, CLASS_TEMPLATES, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert ZeroShot.Params() == ZeroShot.Params(templates="ensemble", template="a photo of a {}.")
    ensemble = ZeroShot(context, ZeroShot.Params())
    single = ZeroShot(context, ZeroShot.Params(templates="single"))
    torch.testing.assert_close(ensemble.head, zero_shot_head(bundle.model, bundle.tokenizer, CLASSES, CLASS_TEMPLATES))
    torch.testing.assert_close(single.head.T, make(KgCoOp)._zero_shot(bundle), rtol=0, atol=1e-6)
    assert (single.head - ensemble.head).abs().max() > 1e-3
    with pytest.raises(ValueError):
        ZeroShot.Params(template="a photo of a")


def test_compat_metrics_after_a_trial_with_an_upgraded_model() -> None:
    metrics = run(
        {
            "method": "contcoop",
            "data": {
                "source": {"shapes": {"per_class": {"train": 4, "val": 1, "test": 5}}},
                "id": "photo",
                "ood": ["sketch"],
            },
            "train": {"epochs": 1, "batch_size": 20, "lr": 2e-3},
            "params": {"upgrade_model": "zoo/tiny-clip-v2"},
        }
    )
    names = ["compat/v1/acc", "compat/v2/acc", "compat/hmean", "compat/v1/zs_acc", "compat/v2/zs_acc"]
    assert all(0 <= metrics[n] <= 1 for n in names)
    assert metrics["compat/v1/acc"] == pytest.approx(metrics["id/acc"])
    a, b = metrics["compat/v1/acc"], metrics["compat/v2/acc"]
    assert metrics["compat/hmean"] == pytest.approx(2 * a * b / (a + b))
    assert {"train/kd", "compat/v2/ood_avg_acc"} <= set(metrics)
