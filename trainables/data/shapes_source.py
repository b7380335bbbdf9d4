"""The `shapes` world as a data source, with its splits cached on disk as safetensors."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from trainables.data.base import DomainSplit, RetentionTask, cache_root
from trainables.data.captions import CLASS_TEMPLATES, TASK_TEMPLATES
from trainables.data.shapes_world import CLASSES, DOMAINS, SPLITS, TASK_CLASSNAMES, ShapesConfig
from trainables.errors import InputError

# Rendering and the safetensors cache need torch; they are imported where a split is built, so
# that checking a sweep file (which opens the source for its domains) does not import torch.
if TYPE_CHECKING:
    import torch


RENDERING_MODULES = ("shapes_world.py", "shapes.py", "shape_render.py", "shape_sdf.py")
RETENTION_PER_CLASS = 40  # per class and domain, as on the zoo's model cards


@lru_cache(maxsize=1)
def rendering_digest() -> str:
    """Hash of the code that draws the pixels: any change to it invalidates cached splits (a
    version number bumped by hand was forgotten once, and stale images skewed a zoo card)."""
    here = Path(__file__).resolve().parent
    text = b"".join((here / name).read_bytes() for name in RENDERING_MODULES)
    return hashlib.sha256(text).hexdigest()[:12]


class ShapesSource:
    """Deterministic synthetic domains; the first request of a split renders and caches it."""

    classnames = CLASSES
    domains = DOMAINS
    templates = CLASS_TEMPLATES

    def __init__(self, config: ShapesConfig | None = None, cache_dir: Path | None = None) -> None:
        self.config = config or ShapesConfig()
        self.cache_dir = (cache_dir or cache_root()) / "shapes"
        self.fingerprint = f"shapes-{self.config.key(sorted(self.config.per_class.items()))}"

    def _cache_file(self, domain: str, split: str) -> Path:
        key = self.config.key(domain, split, self.config.per_class[split], rendering_digest())
        return self.cache_dir / f"{domain}-{split}-{key}.safetensors"

    def _cached(self, name: str, make) -> tuple[torch.Tensor, torch.Tensor]:
        return self._cached_at(self.cache_dir / f"{name}-{self.config.key(name, rendering_digest())}.safetensors", make)

    @staticmethod
    def _cached_at(path: Path, make) -> tuple[torch.Tensor, torch.Tensor]:
        from safetensors.torch import load_file, save_file

        if path.is_file():
            tensors = load_file(path)
            return tensors["images"], tensors["labels"]
        images, labels = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash or a concurrent trial never sees half a file.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        save_file({"images": images.contiguous(), "labels": labels.contiguous()}, tmp)
        os.replace(tmp, path)
        return images, labels

    def retention_tasks(self) -> dict[str, RetentionTask]:
        """The held-out zero-shot tasks: unseen shapes and colour naming, over every domain."""
        from trainables.data.shapes import make_task

        tasks = {}
        for task, classnames in TASK_CLASSNAMES.items():
            images, labels = self._cached(
                f"task-{task}-{RETENTION_PER_CLASS}", lambda t=task: make_task(self.config, t, RETENTION_PER_CLASS)
            )
            tasks[task] = RetentionTask(images, labels, classnames, TASK_TEMPLATES[task])
        return tasks

    def split(self, domain: str, split: str) -> DomainSplit:
        if domain not in DOMAINS:
            raise InputError("data.domain", f"unknown shapes domain {domain!r}; known: {', '.join(DOMAINS)}")
        if split not in SPLITS:
            raise InputError("data.split", f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        from trainables.data.shapes import make_split

        path = self._cache_file(domain, split)
        images, labels = self._cached_at(path, lambda: make_split(self.config, domain, split))
        return DomainSplit(
            domain=domain,
            split=split,
            labels=labels,
            images=images,
            fingerprint=f"{self.fingerprint}-{path.stem}",
        )
