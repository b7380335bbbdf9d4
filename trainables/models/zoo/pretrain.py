"""Contrastive (CLIP) pretraining of a zoo model on captioned `shapes` images of every domain.

The data stream is infinite and deterministic: step ``k`` renders a fresh batch from a generator
seeded by (recipe seed, k), so no image is seen twice and a rebuild repeats the same stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from trainables.data.captions import captions_for
from trainables.data.shapes import generator_for, render_batch
from trainables.data.shapes_world import ALL_SHAPES, DOMAINS, ShapesConfig
from trainables.data.transforms import normalize_batch
from trainables.models.zoo import PretrainRecipe, register_configs

StepCallback = Callable[[int, float, torch.nn.Module], None]


def caption_batch(
    world: ShapesConfig,
    seed: int,
    step: int,
    batch_size: int,
    drop: float = 0.5,
    domain_weights: tuple[float, ...] | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Images (uint8) and captions of pretraining step ``step``, all domains and shapes mixed."""
    gen = generator_for(world, "pretrain", seed, step)
    weights = torch.tensor(domain_weights or [1.0] * len(DOMAINS))
    domain_of = torch.multinomial(weights, batch_size, replacement=True, generator=gen)
    shape_of = torch.randint(len(ALL_SHAPES), (batch_size,), generator=gen)
    images = torch.empty((batch_size, 3, world.image_size, world.image_size), dtype=torch.uint8)
    texts: list[str] = [""] * batch_size
    for d, domain in enumerate(DOMAINS):
        rows = (domain_of == d).nonzero().flatten()
        if rows.numel() == 0:
            continue
        x, scenes, bucket = render_batch(shape_of[rows], domain, world.image_size, gen)
        images[rows] = x
        captions = captions_for(scenes, bucket, domain, world.image_size, gen, drop=drop)
        for row, text in zip(rows.tolist(), captions, strict=True):
            texts[row] = text
    return images, texts


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    # CLIP practice: no decay on gains, biases, embeddings of position/class, or the logit scale.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim < 2 or "logit_scale" in name or ("embedding" in name and "token" not in name):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, recipe: PretrainRecipe) -> float:
    """Linear warmup, then cosine decay to zero."""
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _train_steps(
    model: torch.nn.Module,
    tokenizer,
    world: ShapesConfig,
    recipe: PretrainRecipe,
    steps: range,
    lr: Callable[[int], float],
    weights: tuple[float, ...],
    on_step: StepCallback | None,
) -> None:
    optimizer = torch.optim.AdamW(_param_groups(model, recipe.weight_decay), lr=lr(0), betas=(0.9, 0.98), eps=1e-6)
    import open_clip  # here: its import takes seconds; the data sources import caption_batch only

    loss_fn = open_clip.ClipLoss()
    model.train()
    for index, step in enumerate(steps):
        images, texts = caption_batch(world, recipe.seed, step, recipe.batch_size, recipe.caption_drop, weights)
        for group in optimizer.param_groups:
            group["lr"] = lr(index)
        image_features, text_features, scale = model(normalize_batch(images), tokenizer(texts))
        loss = loss_fn(image_features, text_features, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # CLIP clamps the temperature at 100
            model.get_parameter("logit_scale").clamp_(0, math.log(100))
        if on_step is not None:
            on_step(step, loss.item(), model)


def pretrain(name: str, recipe: PretrainRecipe, on_step: StepCallback | None = None) -> torch.nn.Module:
    """Train zoo model ``name`` from scratch following ``recipe``; returns it in eval mode."""
    import open_clip

    register_configs()
    torch.manual_seed(recipe.seed)
    model = open_clip.create_model(name, pretrained=None)
    tokenizer = open_clip.get_tokenizer(name)
    world = ShapesConfig(image_size=model.visual.image_size[0], seed=recipe.world_seed)
    _train_steps(
        model, tokenizer, world, recipe, range(recipe.steps), lambda i: lr_at(i, recipe), recipe.domain_weights, on_step
    )
    return model.eval()
