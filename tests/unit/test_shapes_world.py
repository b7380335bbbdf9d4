"""The synthetic `shapes` world: determinism, balance, rendering, captions and held-out tasks."""

from __future__ import annotations

import torch

from trainables.data import shapes, shapes_world
from trainables.data.captions import CLASS_TEMPLATES, captions_for
from trainables.data.shapes_source import ShapesSource
from trainables.data.shapes_world import COLOURS

SMALL = shapes.ShapesConfig(per_class={"train": 12, "val": 4, "test": 6})


def test_same_seed_gives_identical_tensors() -> None:
    for domain in shapes_world.DOMAINS:
        a_images, a_labels = shapes.make_split(SMALL, domain, "train")
        b_images, b_labels = shapes.make_split(SMALL, domain, "train")
        assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)


def test_other_seed_split_or_domain_gives_other_images() -> None:
    base, _ = shapes.make_split(SMALL, "photo", "train")
    other_seed, _ = shapes.make_split(shapes.ShapesConfig(seed=1, per_class=SMALL.per_class), "photo", "train")
    other_split, _ = shapes.make_split(SMALL, "photo", "test")
    other_domain, _ = shapes.make_split(SMALL, "sketch", "train")
    assert not torch.equal(base, other_seed)
    assert not torch.equal(base[: len(other_split)], other_split)
    assert not torch.equal(base, other_domain)


def test_splits_are_class_balanced_and_shaped() -> None:
    for split, n in SMALL.per_class.items():
        images, labels = shapes.make_split(SMALL, "clipart", split)
        assert images.shape == (n * len(shapes_world.CLASSES), 3, 32, 32) and images.dtype == torch.uint8
        assert torch.bincount(labels, minlength=len(shapes_world.CLASSES)).tolist() == [n] * len(shapes_world.CLASSES)


def test_domains_have_equal_sizes_and_distinct_styles() -> None:
    sizes = {d: len(shapes.make_split(SMALL, d, "val")[1]) for d in shapes_world.DOMAINS}
    assert len(set(sizes.values())) == 1
    # Sketches are mostly paper; photos have textured, darker backgrounds.
    sketch = shapes.make_split(SMALL, "sketch", "val")[0].float().mean()
    photo = shapes.make_split(SMALL, "photo", "val")[0].float().mean()
    assert sketch > photo + 40


def test_image_size_is_configurable() -> None:
    config = shapes.ShapesConfig(image_size=48, per_class={"train": 2, "val": 1, "test": 1})
    images, _ = shapes.make_split(config, "painting", "test")
    assert images.shape[-2:] == (48, 48)


def test_every_shape_is_drawn_with_object_pixels() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.arange(len(shapes_world.ALL_SHAPES))
    images, _, _ = shapes.render_batch(ids, "clipart", 32, gen)
    background = images[:, :, 0, 0].float()[:, :, None, None]
    changed = (images.float() - background).abs().sum(1) > 60
    assert (changed.flatten(1).sum(1) >= 10).all()


def test_captions_name_domain_colour_shape_size_and_position() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.arange(len(shapes_world.ALL_SHAPES))
    _, scenes, bucket = shapes.render_batch(ids, "sketch", 32, gen)
    full = captions_for(scenes, bucket, "sketch", 32, gen, drop=0.0, generic=0.0)
    for text, shape, colour, size in zip(
        full, shapes_world.ALL_SHAPES, scenes.colour.tolist(), bucket.tolist(), strict=True
    ):
        assert "sketch" in text and shape in text and list(COLOURS)[colour] in text
        assert list(shapes_world.SIZES)[size] in text and " in the " in text
    bare = captions_for(scenes, bucket, "sketch", 32, gen, drop=1.0, generic=0.0)
    assert bare[0] == "a circle."


def test_held_out_tasks_are_balanced_and_disjoint_from_classes() -> None:
    assert not set(shapes_world.HELD_OUT_SHAPES) & set(shapes_world.CLASSES)
    images, labels = shapes.make_task(SMALL, "unseen_shapes", per_class=3)
    assert len(images) == 3 * len(shapes_world.HELD_OUT_SHAPES) * len(shapes_world.DOMAINS)
    assert torch.bincount(labels).tolist() == [3 * len(shapes_world.DOMAINS)] * len(shapes_world.HELD_OUT_SHAPES)
    _, colours = shapes.make_task(SMALL, "colour", per_class=2)
    assert colours.max() < len(COLOURS)


def test_templates_format_class_names() -> None:
    assert all(t.format("star").count("star") == 1 for t in CLASS_TEMPLATES)


def test_source_caches_splits_on_disk(tmp_path) -> None:
    source = ShapesSource(SMALL, cache_dir=tmp_path)
    first = source.split("infograph", "test")
    files = list((tmp_path / "shapes").glob("*.safetensors"))
    assert len(files) == 1
    second = source.split("infograph", "test")
    assert torch.equal(first.images, second.images) and first.fingerprint == second.fingerprint
    assert not list((tmp_path / "shapes").glob("*.tmp"))


def test_cache_key_follows_the_rendering_code(tmp_path, monkeypatch) -> None:
    from trainables.data import shapes_source

    source = ShapesSource(SMALL, cache_dir=tmp_path)
    source.split("photo", "val")
    monkeypatch.setattr(shapes_source, "rendering_digest", lambda: "changed-renderer")
    source.split("photo", "val")
    assert len(list((tmp_path / "shapes").glob("photo-val-*.safetensors"))) == 2
