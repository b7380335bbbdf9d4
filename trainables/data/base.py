"""What every data source hands to a trial: labelled splits of named domains.

A source (the synthetic `shapes` world, a DomainNet-style folder, ImageNet variants) exposes its
class names and domains, and builds a :class:`DomainSplit` per (domain, split). A split knows its
labels, an optional class subset (ImageNet-R/-A score only 200 of the 1000 classes) and a
fingerprint for caches; ``trainables.data.datasets.split_dataset`` turns it into a torch
``Dataset``. This module imports no torch: checking a sweep file opens sources without it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from trainables.errors import InputError

if TYPE_CHECKING:
    import torch


@functools.cache
def openai_templates() -> tuple[str, ...]:
    """The 80 OpenAI ImageNet templates; Lipsum-FT uses them for DomainNet too."""
    # Imported here: open_clip costs seconds to import, and checking a sweep file needs none of it.
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)


def cache_root() -> Path:
    """Sweeper's on-disk cache: $SWEEPER_CACHE, else ~/.cache/sweeper."""
    return Path(os.environ.get("SWEEPER_CACHE", "~/.cache/sweeper")).expanduser()


def user_path(text: object, field: str) -> Path:
    """``Path(text).expanduser()`` of a path from user input; InputError naming ``field`` when it is
    not a string, or starts with ``~name/`` for a user ``name`` that does not exist."""
    if not isinstance(text, (str, os.PathLike)):
        raise InputError(field, f"must be a path (a string), got {text!r}")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        raise InputError(field, f"cannot expand {str(text)!r}: no such user's home folder") from None


def digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


@dataclass
class DomainSplit:
    """One labelled split of one domain."""

    domain: str
    split: str
    labels: torch.Tensor
    fingerprint: str
    images: torch.Tensor | None = None  # in-memory sources
    paths: list[Path] | None = None  # file-backed sources
    class_subset: torch.Tensor | None = None  # indices of the classes this domain can contain

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class RetentionTask:
    """A held-out zero-shot task (never fine-tuned on): it measures what fine-tuning forgets."""

    images: torch.Tensor  # uint8 [N, 3, H, W] at the source's image size
    labels: torch.Tensor
    classnames: tuple[str, ...]
    templates: tuple[str, ...]


class DataSource(Protocol):
    """The interface every data source implements. A source may also offer held-out zero-shot
    tasks through ``retention_tasks() -> dict[str, RetentionTask]`` (the shapes world does), and
    name the domains that have only a test split in ``test_only`` (ImageNet's variants)."""

    classnames: tuple[str, ...]
    domains: tuple[str, ...]
    fingerprint: str

    @property
    def templates(self) -> tuple[str, ...]:
        """Prompt templates for the zero-shot head (read-only: some sources compute them)."""
        ...

    def split(self, domain: str, split: str) -> DomainSplit: ...
