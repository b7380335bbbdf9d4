"""The real data paths (DomainNet and ImageNet-variant folders) on small generated image folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from trainables.data.datasets import split_dataset
from trainables.data.imagefolder import DomainFolderSource
from trainables.data.imagenet import ImageNetVariantsSource, _synsets
from trainables.data.sources import open_source
from trainables.data.transforms import eval_transform, train_transform
from trainables.errors import InputError

CLASSES = ["aircraft_carrier", "bee", "zebra"]


def _write_images(folder: Path, n: int, size: int = 40) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        colour = (i * 40 % 255, 80, 200)
        Image.new("RGB", (size, size + 8), colour).save(folder / f"img{i:03d}.jpg")


@pytest.fixture()
def domainnet(tmp_path: Path) -> Path:
    for domain in ("real", "sketch"):
        for name in CLASSES:
            _write_images(tmp_path / domain / name, 12)
    return tmp_path


def test_domainnet_layout_lists_domains_classes_and_hash_splits(domainnet: Path) -> None:
    source = DomainFolderSource(domainnet)
    assert source.domains == ("real", "sketch") and source.classnames == tuple(CLASSES)
    splits = {s: source.split("real", s) for s in ("train", "val", "test")}
    assert sum(len(s) for s in splits.values()) == 12 * len(CLASSES)
    assert len(splits["train"]) > len(splits["test"])
    paths = [p for s in splits.values() for p in s.paths]
    assert len(set(paths)) == len(paths)  # disjoint
    for split in splits.values():
        for path, label in zip(split.paths, split.labels.tolist(), strict=True):
            assert path.parent.name == CLASSES[label]


def test_domainnet_split_files_are_used_and_val_is_carved_from_train(domainnet: Path) -> None:
    for name in CLASSES:  # enough train images for the path hash to carve some out for val
        _write_images(domainnet / "sketch" / name, 40)
    rows = [f"sketch/{c}/img{i:03d}.jpg {k}" for k, c in enumerate(CLASSES) for i in range(36)]
    (domainnet / "sketch_train.txt").write_text("\n".join(rows) + "\n")
    tests = [f"sketch/{c}/img{i:03d}.jpg {k}" for k, c in enumerate(CLASSES) for i in range(36, 40)]
    (domainnet / "sketch_test.txt").write_text("\n".join(tests) + "\n")
    source = DomainFolderSource(domainnet)
    train, val, test = (source.split("sketch", s) for s in ("train", "val", "test"))
    assert len(test) == 4 * len(CLASSES)
    assert len(train) + len(val) == 36 * len(CLASSES)
    # val is carved from the whole train file (it was empty when carved from the train split)
    assert len(val) > 0 and not set(val.paths) & set(train.paths)
    assert {p.name for p in test.paths} == {f"img{i:03d}.jpg" for i in range(36, 40)}


def test_folder_dataset_yields_normalised_tensors_at_model_size(domainnet: Path) -> None:
    split = open_source({"imagefolder": str(domainnet)}).split("real", "test")
    image, label = split_dataset(split, eval_transform(32))[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and 0 <= label < 3
    augmented, _ = split_dataset(split, train_transform(32))[0]
    assert augmented.shape == (3, 32, 32)


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as info:
        open_source({"imagefolder": str(tmp_path / "nope")})
    assert "nope" in str(info.value) and info.value.where == "data.source.imagefolder"


def test_class_mismatch_between_domains_names_both(domainnet: Path) -> None:
    _write_images(domainnet / "sketch" / "yak", 2)
    with pytest.raises(InputError, match="class mismatch") as info:
        DomainFolderSource(domainnet)
    assert "'real'" in str(info.value) and "'sketch'" in str(info.value) and "yak" in str(info.value)


def test_unknown_layout_and_domain_are_rejected(domainnet: Path) -> None:
    with pytest.raises(InputError, match="unknown layout"):
        open_source({"imagefolder": str(domainnet), "layout": "coco"})
    with pytest.raises(InputError, match="unknown domain"):
        DomainFolderSource(domainnet).split("quickdraw", "test")


def test_imagenet_variants_map_onto_the_1000_class_head(tmp_path: Path) -> None:
    wnids = _synsets("imagenet_synsets.txt")
    r_wnids = _synsets("imagenet_r_synsets.txt")
    first_r, second_r = r_wnids[0], r_wnids[1]
    for wnid in (first_r, second_r):
        _write_images(tmp_path / "val" / wnid, 2)
        _write_images(tmp_path / "train" / wnid, 10)
        _write_images(tmp_path / "imagenet-r" / wnid, 3)
        _write_images(tmp_path / "imagenet-sketch" / wnid, 1)
    _write_images(tmp_path / "imagenetv2" / "7", 2)
    source = open_source({"imagefolder": str(tmp_path), "layout": "imagenet"})
    assert len(source.classnames) == 1000
    assert set(source.domains) == {"imagenet", "imagenet_v2", "imagenet_r", "imagenet_sketch"}
    val = source.split("imagenet", "test")
    assert sorted(set(val.labels.tolist())) == sorted([wnids.index(first_r), wnids.index(second_r)])
    train = source.split("imagenet", "train")
    assert 0 < len(train) <= 20 and train.class_subset is None
    r = source.split("imagenet_r", "test")
    assert r.class_subset is not None and len(r.class_subset) == 200
    assert set(r.labels.tolist()) <= set(r.class_subset.tolist())
    assert source.split("imagenet_v2", "test").labels.tolist() == [7, 7]
    with pytest.raises(InputError, match="test-only"):
        source.split("imagenet_r", "train")


def test_imagenet_folder_with_a_non_wordnet_class_is_rejected(tmp_path: Path) -> None:
    _write_images(tmp_path / "val" / "dogs", 1)
    source = ImageNetVariantsSource(tmp_path)
    with pytest.raises(InputError, match="WordNet id"):
        source.split("imagenet", "test")
