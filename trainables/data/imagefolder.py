"""Image folders in DomainNet layout: ``root/<domain>/<class>/*.jpg``, optional split files.

Split files follow DomainNet's own: ``root/<domain>_<split>.txt`` with one
``<domain>/<class>/<file> [label]`` per line (the label column is ignored: the class folder is the
label). Without a split file, each image falls in train / val / test by a hash of its relative
path (80 / 10 / 10), which is stable when images are added. DomainNet ships train and test
files only; val is then carved from train by the same hash.
"""

from __future__ import annotations

from pathlib import Path

from trainables.data.base import DomainSplit, digest, openai_templates, user_path
from trainables.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SPLITS = ("train", "val", "test")


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _rows(split_file: Path) -> list[str]:
    """The image paths of a DomainNet split file (``<domain>/<class>/<file> <label>`` per line)."""
    try:
        text = split_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:  # validate reads it too: exit 2, not a traceback
        raise InputError(str(split_file), f"cannot read this split file: {error}") from None
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def hash_bucket(relative: str) -> str:
    """Deterministic 80/10/10 split by path hash."""
    value = int(digest(relative), 16) % 10
    return "val" if value == 8 else "test" if value == 9 else "train"


class DomainFolderSource:
    """A DomainNet-style folder: one subfolder per domain, the same class subfolders in each."""

    @property
    def templates(self) -> tuple[str, ...]:
        return openai_templates()

    def __init__(self, root: str | Path, domains: list[str] | None = None, field: str = "data.imagefolder") -> None:
        self.root = user_path(root, field)
        self.field = field
        if not self.root.is_dir():
            raise InputError(field, f"image folder {str(self.root)!r} does not exist")
        if domains is not None and (not isinstance(domains, list) or not all(isinstance(d, str) for d in domains)):
            raise InputError(field.rpartition(".")[0] + ".domains", f"must be a list of folder names, got {domains!r}")
        found = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.domains = tuple(domains or found)
        for domain in self.domains:
            if not (self.root / domain).is_dir():
                raise InputError(
                    field, f"domain folder {str(self.root / domain)!r} does not exist; found: {', '.join(found)}"
                )
        self.classnames = self._common_classes()
        self.fingerprint = f"folder-{digest(str(self.root.resolve()), self.domains, self.classnames)}"

    def _common_classes(self) -> tuple[str, ...]:
        per_domain = {d: sorted(p.name for p in (self.root / d).iterdir() if p.is_dir()) for d in self.domains}
        reference_domain = self.domains[0]
        reference = per_domain[reference_domain]
        if not reference:
            raise InputError(self.field, f"domain folder {str(self.root / reference_domain)!r} has no class folders")
        for domain, classes in per_domain.items():
            if classes != reference:
                missing = sorted(set(reference) - set(classes))[:5]
                extra = sorted(set(classes) - set(reference))[:5]
                raise InputError(
                    self.field,
                    f"class mismatch between domains {reference_domain!r} and {domain!r} under {str(self.root)!r}: "
                    f"{domain!r} lacks {missing} and has extra {extra}",
                )
        return tuple(reference)

    def _from_split_file(self, domain: str, split: str) -> list[str] | None:
        file = self.root / f"{domain}_{split}.txt"
        train_file = self.root / f"{domain}_train.txt"
        if split == "val" and not file.is_file() and train_file.is_file():
            # Carved from the whole train list (not from the train split, which already leaves it out).
            return [r for r in _rows(train_file) if hash_bucket(r) == "val"]
        if not file.is_file():
            return None
        rows = _rows(file)
        if split == "train" and not (self.root / f"{domain}_val.txt").is_file():
            rows = [r for r in rows if hash_bucket(r) != "val"]
        return rows

    def rows(self, domain: str, split: str) -> list[str]:
        """The ``<domain>/<class>/<file>`` paths (under the root) of one split, without torch."""
        if domain not in self.domains:
            raise InputError(
                "data.domain", f"unknown domain {domain!r} in {str(self.root)!r}; found: {', '.join(self.domains)}"
            )
        if split not in SPLITS:
            raise InputError("data.split", f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        rows = self._from_split_file(domain, split)
        if rows is None:
            rows = [
                f"{domain}/{c}/{p.name}"
                for c in self.classnames
                for p in list_images(self.root / domain / c)
                if hash_bucket(f"{domain}/{c}/{p.name}") == split
            ]
        return rows

    def split(self, domain: str, split: str) -> DomainSplit:
        import torch  # here, not at the top: checking a sweep file opens sources without torch

        rows = self.rows(domain, split)
        index = {c: i for i, c in enumerate(self.classnames)}
        paths, labels = [], []
        for row in rows:
            parts = Path(row).parts
            if len(parts) < 3 or parts[-2] not in index:
                raise InputError(
                    self.field, f"split file line {row!r} is not <domain>/<class>/<file> with a known class"
                )
            paths.append(self.root / row)
            labels.append(index[parts[-2]])
        return DomainSplit(
            domain=domain,
            split=split,
            labels=torch.tensor(labels, dtype=torch.long),
            paths=paths,
            fingerprint=f"{self.fingerprint}-{domain}-{split}-{digest(rows)}",
        )
