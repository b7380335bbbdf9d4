"""Reference image-caption pairs for DiVE's regularisers (CC3M in the paper).

Two sources, both sampled with the trial's generator so a seed fixes every reference batch:

- the embedded world: fresh captioned ``shapes`` images of the zoo model's own pretraining
  distribution (same world seed, caption drop and domain mix as its recipe), from ``caption_batch``;
- a caption file the user gives: TSV or CSV with a header naming an image column (``image``,
  ``filepath`` or ``path``) and a caption column (``caption``, ``title`` or ``text``); image paths
  are relative to the file's folder (absolute paths are kept).

Reference images are not augmented [R: the DiVE notes do not say]; they get the eval transform.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image

from trainables.data.base import user_path
from trainables.data.shapes_world import ShapesConfig
from trainables.data.transforms import eval_transform, normalize_batch
from trainables.errors import InputError
from trainables.models import zoo
from trainables.models.loading import ZOO_PREFIX, ClipBundle
from trainables.models.zoo.pretrain import caption_batch

IMAGE_COLUMNS = ("image", "filepath", "path")
CAPTION_COLUMNS = ("caption", "title", "text")


class ReferencePairs(Protocol):
    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        """``count`` normalised images [count, 3, S, S] (CPU) and their captions."""
        ...


@dataclass
class PretrainingPairs:
    """Fresh captioned images of the embedded pretraining distribution, one stream per draw."""

    world: ShapesConfig
    drop: float
    domain_weights: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        # One seed per batch from the trial's generator: reproducible, and (as the generator state
        # is checkpointed by the loop) a resumed trial continues the same sequence of batches.
        seed = int(torch.randint(2**62, (1,), generator=generator))
        images, captions = caption_batch(self.world, seed, 0, count, self.drop, self.domain_weights)
        return normalize_batch(images, self.mean, self.std), captions


def read_caption_file(path: str | Path, field: str, check_images: bool = True) -> tuple[tuple[Path, str], ...]:
    """(image path, caption) rows of a TSV/CSV caption file; InputError on any problem."""
    file = user_path(path, field)
    if not file.is_file():
        raise InputError(field, f"caption file {str(file)!r} does not exist")
    stat = file.stat()
    # Sweep validation checks every searched value, and each trial reads the file again: keyed by
    # size and mtime, a large file (CC3M) is parsed and its images stat-ed once per process.
    try:
        return _read_rows(str(file.resolve()), stat.st_size, stat.st_mtime_ns, field, check_images)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:  # unreadable, not UTF-8 text, not CSV/TSV
        raise InputError(field, f"cannot read caption file {str(file)!r} as UTF-8 TSV/CSV: {exc}") from None


@lru_cache(maxsize=4)
def _read_rows(name: str, size: int, mtime_ns: int, field: str, check_images: bool) -> tuple[tuple[Path, str], ...]:
    file = Path(name)
    with file.open(newline="", encoding="utf-8") as handle:
        first = handle.readline()
        handle.seek(0)
        reader = csv.reader(handle, delimiter="\t" if "\t" in first else ",")
        header = [column.strip().lower() for column in next(reader, [])]
        image_col = next((header.index(c) for c in IMAGE_COLUMNS if c in header), None)
        caption_col = next((header.index(c) for c in CAPTION_COLUMNS if c in header), None)
        if image_col is None or caption_col is None:
            raise InputError(
                field,
                f"caption file {str(file)!r}: the header must name an image column ({' | '.join(IMAGE_COLUMNS)}) "
                f"and a caption column ({' | '.join(CAPTION_COLUMNS)}); found {header}",
            )
        rows: list[tuple[Path, str]] = []
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue  # blank lines
            if len(row) <= max(image_col, caption_col) or not row[caption_col].strip():
                raise InputError(field, f"caption file {str(file)!r} line {line}: needs an image path and a caption")
            rows.append((file.parent / row[image_col].strip(), row[caption_col].strip()))
    if not rows:
        raise InputError(field, f"caption file {str(file)!r} has no rows")
    if check_images:
        missing = [(i, p) for i, (p, _) in enumerate(rows) if not p.is_file()]
        if missing:
            index, first_missing = missing[0]
            raise InputError(
                field,
                f"caption file {str(file)!r}: {len(missing)} image(s) not found, first {str(first_missing)!r} "
                f"(row {index + 1}; paths are relative to the caption file's folder)",
            )
    return tuple(rows)


class CaptionFilePairs:
    """Pairs drawn uniformly, with replacement, from a user's caption file."""

    def __init__(
        self, path: str | Path, image_size: int, mean: tuple[float, ...], std: tuple[float, ...], field: str
    ) -> None:
        self.rows = read_caption_file(path, field)
        self.transform = eval_transform(image_size, mean, std)
        self.field = field

    def _image(self, path: Path) -> torch.Tensor:
        try:
            with Image.open(path) as image:
                return self.transform(image.convert("RGB"))
        except OSError as exc:  # unreadable or corrupt: the file's fault, not the trial's
            raise InputError(self.field, f"cannot read reference image {str(path)!r}: {exc}") from None

    def sample(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        # With replacement: duplicates are harmless here (no contrastive negatives in AVL/PVL), and
        # it costs O(count) rather than a permutation of a CC3M-sized file per step.
        picks = torch.randint(len(self.rows), (count,), generator=generator).tolist()
        images = torch.stack([self._image(self.rows[i][0]) for i in picks])
        return images, [self.rows[i][1] for i in picks]


def reference_pairs(reference: str | None, bundle: ClipBundle, field: str) -> ReferencePairs:
    """The caption file ``reference``, or (None) the pretraining distribution of a zoo model."""
    if reference is not None:
        return CaptionFilePairs(reference, bundle.image_size, bundle.mean, bundle.std, field)
    # "zoo/tiny-clip-v1", or "tiny-clip-v1@/path/to/weights" for a zoo architecture loaded from a file.
    arch = bundle.name.removeprefix(ZOO_PREFIX).split("@")[0]
    recipe = zoo.RECIPES.get(arch)
    if recipe is None:
        raise InputError(
            field,
            f"model {bundle.name!r} was not pretrained on the embedded world, so it has no built-in "
            f"reference pairs; give a caption file (TSV/CSV with image and caption columns)",
        )
    world = ShapesConfig(image_size=bundle.image_size, seed=recipe.world_seed)
    return PretrainingPairs(world, recipe.caption_drop, recipe.domain_weights, bundle.mean, bundle.std)
