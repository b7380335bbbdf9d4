"""ImageNet and its distribution-shift variants, as folders, on the 1000-class head.

Layout under ``root`` (each folder name can be overridden):

- ``train/<wnid>/*`` and ``val/<wnid>/*``  ImageNet, the ID domain: its train and val splits come
  from ``train/`` (val by path hash, 1 in 10), its test split is the official ``val/``
- ``imagenetv2/<idx>/*``  ImageNet-V2 (matched-frequency), folders named by class index 0..999
- ``imagenet-sketch/<wnid>/*``  ImageNet-Sketch, 1000 classes
- ``imagenet-r/<wnid>/*`` ImageNet-R, 200 classes
- ``imagenet-a/<wnid>/*`` ImageNet-A, 200 classes

Labels are always indices into the 1000 classes (sorted WordNet ids, the standard order). R and A
carry a ``class_subset`` so evaluation restricts logits to their 200 classes, as the Lipsum-FT
and WiSE-FT references do.
"""

from __future__ import annotations

from pathlib import Path

from trainables.data.base import DomainSplit, digest, openai_templates, user_path
from trainables.data.imagefolder import hash_bucket, list_images
from trainables.errors import InputError

TRAIN_FOLDER = "train"
DEFAULT_FOLDERS: dict[str, str] = {
    "imagenet": "val",
    "imagenet_v2": "imagenetv2",
    "imagenet_sketch": "imagenet-sketch",
    "imagenet_r": "imagenet-r",
    "imagenet_a": "imagenet-a",
}


def _synsets(filename: str) -> list[str]:
    """WordNet ids shipped with timm (an open_clip dependency), in their standard order."""
    import timm.data

    info = Path(timm.data.__file__).parent / "_info" / filename
    return info.read_text().split()


class ImageNetVariantsSource:
    """ImageNet ID and OOD variants under one root; domains are the keys of ``folders``."""

    @property
    def templates(self) -> tuple[str, ...]:
        return openai_templates()

    def __init__(
        self, root: str | Path, folders: dict[str, str] | None = None, field: str = "data.imagefolder"
    ) -> None:
        self.root = user_path(root, field)
        self.field = field
        if not self.root.is_dir():
            raise InputError(field, f"image folder {str(self.root)!r} does not exist")
        self.folders = {k: v for k, v in (folders or DEFAULT_FOLDERS).items() if (self.root / v).is_dir()}
        if not self.folders:
            raise InputError(
                field, f"{str(self.root)!r} holds none of the ImageNet folders {sorted(DEFAULT_FOLDERS.values())}"
            )
        self.wnids = _synsets("imagenet_synsets.txt")
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

        self.classnames = tuple(IMAGENET_CLASSNAMES)
        self.domains = tuple(self.folders)
        self.test_only = tuple(d for d in self.domains if d != "imagenet")  # see split()
        self.fingerprint = f"imagenet-{digest(str(self.root.resolve()), sorted(self.folders.items()))}"

    def _class_folders(self, domain: str, folder: Path) -> list[tuple[Path, int]]:
        index = {w: i for i, w in enumerate(self.wnids)}
        out = []
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            if domain == "imagenet_v2":  # V2 names folders by class index
                if not sub.name.isdigit() or not 0 <= int(sub.name) < 1000:
                    raise InputError(self.field, f"ImageNet-V2 folder {str(sub)!r} is not a class index 0..999")
                out.append((sub, int(sub.name)))
            else:
                if sub.name not in index:
                    raise InputError(self.field, f"folder {str(sub)!r} is not an ImageNet WordNet id (like n01440764)")
                out.append((sub, index[sub.name]))
        return out

    def split(self, domain: str, split: str) -> DomainSplit:
        import torch  # here, not at the top: checking a sweep file opens sources without torch

        if domain not in self.folders:
            raise InputError(
                "data.domain", f"unknown domain {domain!r}; found under {str(self.root)!r}: {', '.join(self.domains)}"
            )
        if split == "test":
            folder = self.root / self.folders[domain]
        elif domain == "imagenet" and (self.root / TRAIN_FOLDER).is_dir():
            folder = self.root / TRAIN_FOLDER
        else:
            raise InputError(
                "data.split",
                f"{domain!r} has no {split!r} split: ImageNet variants are test-only, and "
                f"ImageNet's train/val come from {str(self.root / TRAIN_FOLDER)!r}",
            )
        paths, labels = [], []
        for class_folder, label in self._class_folders(domain, folder):
            for path in list_images(class_folder):
                if split == "test" or hash_bucket(f"{class_folder.name}/{path.name}") == split:
                    paths.append(path)
                    labels.append(label)
        subset = None
        if domain in ("imagenet_r", "imagenet_a"):
            wanted = _synsets(f"{domain}_synsets.txt")
            position = {w: i for i, w in enumerate(self.wnids)}
            subset = torch.tensor(sorted(position[w] for w in wanted), dtype=torch.long)
        return DomainSplit(
            domain=domain,
            split=split,
            labels=torch.tensor(labels, dtype=torch.long),
            paths=paths,
            class_subset=subset,
            fingerprint=f"{self.fingerprint}-{domain}-{split}-{digest([str(p) for p in paths])}",
        )
