"""A corrupt image in an image folder: ``sweeper validate`` decodes a deterministic sample of the files
trials read (the bad-input cases in test_bad_input.py catch one it samples); one the sample skipped
fails the trial that meets it, with an error that names the file, through a DataLoader worker too."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import yaml
from PIL import Image

import trainables.loop as loop
from sweeper.cli import main
from trainables.data.image_files import PER_SPLIT, read_rgb, sample
from trainables.data.imagefolder import DomainFolderSource
from trainables.errors import UnreadableImage


def folder(root: Path) -> Path:
    """Two domains, two classes, 24 PNGs a class; split files put 20 in train (val carved from
    them by path hash) and 4 in test: each domain's train split holds more than PER_SPLIT files."""
    for domain in ("real", "sketch"):
        rows: dict[str, list[str]] = {"train": [], "test": []}
        for k, name in enumerate(("bee", "zebra")):
            (root / domain / name).mkdir(parents=True)
            for i in range(24):
                Image.new("RGB", (36, 40), (k * 120, i * 10, 90)).save(root / domain / name / f"{i}.png")
                rows["train" if i < 20 else "test"].append(f"{domain}/{name}/{i}.png")
        for split, lines in rows.items():
            (root / f"{domain}_{split}.txt").write_text("".join(f"{r} 0\n" for r in lines))
    return root


def test_the_sample_is_spread_over_the_classes_and_the_same_every_time() -> None:
    rows = [f"real/{c}/{i}.png" for c in ("a", "b", "c") for i in range(20)]
    chosen = sample(rows, "real/train")
    assert len(chosen) == PER_SPLIT and len(set(chosen)) == PER_SPLIT
    per_class = [sum(r.startswith(f"real/{c}/") for r in chosen) for c in ("a", "b", "c")]
    assert max(per_class) - min(per_class) <= 1  # round-robin: no class gets two more than another
    assert sample(list(reversed(rows)), "real/train") == chosen  # the order of the listing does not matter
    assert sample(rows, "real/test") != chosen  # each split its own draw
    assert sample(rows[:5], "real/train") == rows[:5]  # few files: every one


def test_an_unreadable_image_names_its_path_and_survives_pickling(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"")
    with pytest.raises(UnreadableImage) as error:
        read_rgb(path)
    assert str(error.value) == f"image file {str(path)!r} cannot be decoded: cannot identify image file"
    assert str(pickle.loads(pickle.dumps(error.value))) == str(error.value)  # as Ray sends it to the driver


def test_a_corrupt_image_the_sample_skipped_fails_the_trial_naming_the_file(tmp_path: Path) -> None:
    root = folder(tmp_path / "images")
    rows = DomainFolderSource(root).rows("real", "train")
    skipped = sorted(set(rows) - set(sample(rows, "real/train")))
    assert skipped  # the folder is big enough that the check leaves some out
    corrupt = root / skipped[0]
    corrupt.write_bytes(corrupt.read_bytes()[:40])  # a PNG cut inside its pixel data
    data = {"source": {"imagefolder": str(root)}, "id": "real", "ood": ["sketch"]}
    sweep = {
        "name": "corrupt",
        "method": "ft",
        "model": "zoo/tiny-clip-v1",
        "data": data,
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-4},
        "search": {"lr": {"grid": [1e-4]}},
        "seeds": [0],
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    assert main(["validate", str(tmp_path / "sweep.yaml")]) == 0  # the sample passes

    # Two CPUs give the training loader a worker process (trainables.device): the error crosses it.
    config = {"method": "ft", "data": data, "train": {"epochs": 1, "batch_size": 8}, "resources": {"cpu": 2}}
    with pytest.raises(UnreadableImage, match=re.escape(f"image file {str(corrupt)!r} cannot be decoded")):
        loop.run(config)
