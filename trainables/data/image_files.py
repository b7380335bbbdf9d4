"""Reading image files so that a bad one names itself, and sample-checking a folder before a sweep.

PIL's errors for a truncated JPEG or a text file named ``x.png`` ("image file is truncated",
"cannot identify image file") do not always name the file, and a trial meets them mid-epoch. So
every read goes through :func:`read_rgb`, whose error names the path, and ``sweeper validate``
(and ``launch``) fully decodes a deterministic sample of the files the sweep's trials will read:
for each (domain, split), up to :data:`PER_SPLIT` files, spread over the classes (one from each
class in a seeded order, then a second from each, ...), or every file when there are no more.
Decoding, not ``Image.verify()``: verify reads no pixel data, so it misses truncation.
No torch here: checking a sweep file must not import it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from trainables.errors import InputError, UnreadableImage

PER_SPLIT = 32  # files decoded per (domain, split); ~256 for a DomainNet sweep with 5 OOD domains


def read_rgb(path: Path) -> Image.Image:
    """The image at ``path``, fully decoded, as RGB; :class:`UnreadableImage` naming the path if it
    cannot be read."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except Exception as error:  # whatever PIL raises here, the file is at fault
        # PIL sometimes names the file itself ("cannot identify image file '...'"): once is enough.
        reason = " ".join(str(error).replace(f" {str(path)!r}", "").split()) or type(error).__name__
        raise UnreadableImage(f"image file {str(path)!r} cannot be decoded: {reason}") from error


def sample(rows: list[str], key: str, limit: int = PER_SPLIT) -> list[str]:
    """Up to ``limit`` of ``rows`` (``<domain>/<class>/<file>``), round-robin over the classes in an
    order seeded by ``key``; all of them when there are at most ``limit``."""
    if len(rows) <= limit:
        return list(rows)
    rng = random.Random(key)  # a str seed is hashed with SHA-512: the same in every process
    by_class: dict[str, list[str]] = {}
    for row in sorted(rows):
        by_class.setdefault(str(Path(row).parent), []).append(row)
    queues = [rng.sample(files, len(files)) for _, files in sorted(by_class.items())]
    rng.shuffle(queues)
    chosen: list[str] = []
    for rank in range(max(map(len, queues))):
        chosen += [queue[rank] for queue in queues if rank < len(queue)]
    return chosen[:limit]


def check_sample(root: Path, splits: Iterable[tuple[str, list[str]]], field: str) -> int:
    """Decode the sample of each ``(key, rows)`` (rows under ``root``); :class:`InputError` naming
    ``field`` and the first file that cannot be decoded. Returns how many files were decoded."""
    decoded = 0
    for key, rows in splits:
        for row in sample(rows, key):
            try:
                read_rgb(root / row)
            except UnreadableImage as error:
                raise InputError(field, f"{error}; fix or remove it") from None
            decoded += 1
    return decoded
