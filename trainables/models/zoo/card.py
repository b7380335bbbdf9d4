"""Build a zoo model end to end: pretrain, save float16 safetensors, measure, write its model card."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file

from trainables.data.captions import CLASS_TEMPLATES, TASK_TEMPLATES
from trainables.data.shapes import make_task
from trainables.data.shapes_source import ShapesSource
from trainables.data.shapes_world import CLASSES, DOMAINS, HELD_OUT_SHAPES, TASK_CLASSNAMES, ShapesConfig
from trainables.data.transforms import normalize_batch
from trainables.models import zoo
from trainables.models.heads import accuracy, encode_images, zero_shot_head
from trainables.models.loading import ClipBundle, load_clip
from trainables.models.zoo.pretrain import StepCallback, pretrain

TASK_PER_CLASS = 40  # per class and domain


def zero_shot_table(bundle: ClipBundle, world: ShapesConfig | None = None) -> dict[str, dict[str, float]]:
    """Zero-shot accuracy with class prompts on each domain's test split, and on held-out tasks."""
    world = world or ShapesConfig()
    source = ShapesSource(world)
    head = zero_shot_head(bundle.model, bundle.tokenizer, CLASSES, CLASS_TEMPLATES)
    per_domain = {}
    for domain in DOMAINS:
        split = source.split(domain, "test")
        assert split.images is not None
        features = encode_images(bundle.model, split.images, normalize_batch)
        per_domain[domain] = round(accuracy(features, head, split.labels), 4)
    tasks = {}
    for task, classnames in TASK_CLASSNAMES.items():
        images, labels = make_task(world, task, TASK_PER_CLASS)
        task_head = zero_shot_head(bundle.model, bundle.tokenizer, classnames, TASK_TEMPLATES[task])
        tasks[task] = round(accuracy(encode_images(bundle.model, images, normalize_batch), task_head, labels), 4)
    return {"zero_shot": per_domain, "tasks": tasks}


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """Float16 safetensors: the 49408-token embedding alone is 12.6 MB in float32."""
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, tmp, metadata={"format": "pt"})
    os.replace(tmp, path)


def build(name: str, out_dir: Path | None = None, on_step: StepCallback | None = None) -> dict:
    """Pretrain ``name`` by its recipe, write weights and card into ``out_dir``; returns the card."""
    start = time.perf_counter()
    model = pretrain(name, zoo.RECIPES[name], on_step)
    return write_model(name, model, time.perf_counter() - start, out_dir)


def write_model(name: str, model: torch.nn.Module, wall: float, out_dir: Path | None = None) -> dict:
    """Save ``model`` as the zoo's ``name`` (weights and card, measured as shipped); returns the card."""
    out_dir = out_dir or zoo.ZOO_DIR
    recipe = zoo.RECIPES[name]
    weights = out_dir / f"{name}.safetensors"
    save_weights(model, weights)
    # Measure the weights as shipped (float16-rounded), through the same loader trials use.
    bundle = load_clip({"arch": name, "pretrained": str(weights)})
    table = zero_shot_table(bundle)
    card = {
        "name": name,
        "architecture": json.loads(zoo.config_path(name).read_text()),
        "parameters": sum(p.numel() for p in model.parameters()),
        "file_size_bytes": weights.stat().st_size,
        "recipe": asdict(recipe),
        "data": {
            "world": "shapes",
            "image_size": bundle.image_size,
            "domains": list(DOMAINS),
            "pretraining_shapes": list(CLASSES + HELD_OUT_SHAPES),
            "pretraining_images": recipe.steps * recipe.batch_size,
            "captions": "domain, colour, shape, size and position; each attribute but the shape "
            f"dropped with p={recipe.caption_drop}",
        },
        "evaluation": {
            "test_images_per_domain": len(CLASSES) * ShapesConfig().per_class["test"],
            "class_templates": list(CLASS_TEMPLATES),
            **table,
        },
        "wall_time_s": round(wall, 1),
        "hardware": {"threads": torch.get_num_threads(), "machine": platform.machine(), "torch": torch.__version__},
    }
    (out_dir / f"{name}.card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card
