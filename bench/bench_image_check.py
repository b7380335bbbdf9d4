"""What the image-folder sample check adds to `sweeper validate`, on a DomainNet-shaped folder.

Builds 6 domains x CLASSES classes x PER_CLASS JPEGs (224 x 224, smooth content with noise, so
files are photo-sized) without split files, then times, for a sweep with ID `real` and the other
five domains as OOD: opening the source (what validate did before), listing the splits a trial
reads plus decoding their sample (what the check adds), and decoding every file of those splits
(what a full check would cost).

Run: .venv/bin/python bench/bench_image_check.py   (prints a Markdown table for BENCHMARKS.md)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from trainables.data.image_files import check_sample, read_rgb
from trainables.data.imagefolder import DomainFolderSource

DOMAINS = ("real", "clipart", "infograph", "painting", "quickdraw", "sketch")
CLASSES = 50
PER_CLASS = 20


def build(root: Path) -> int:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:224, 0:224]
    count = 0
    for d, domain in enumerate(DOMAINS):
        for c in range(CLASSES):
            folder = root / domain / f"class_{c:03d}"
            folder.mkdir(parents=True)
            for i in range(PER_CLASS):
                base = (x * (c + 1) + y * (i + 1) + d * 40) % 256
                pixels = np.stack([base, (base + 85) % 256, (255 - base)], axis=-1) + rng.normal(0, 12, (224, 224, 3))
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.jpg", quality=90)
                count += 1
    return count


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = build(root)
        size_mb = sum(p.stat().st_size for p in root.rglob("*.jpg")) / 2**20
        open_s, source = timed(lambda: DomainFolderSource(root))
        read = [("real", s) for s in ("train", "val", "test")] + [(d, "test") for d in DOMAINS[1:]]
        list_s, rows = timed(lambda: [(f"{d}/{s}", source.rows(d, s)) for d, s in read])
        check_s, decoded = timed(lambda: check_sample(root, rows, "data.source.imagefolder"))
        every = [root / r for _, split_rows in rows for r in split_rows]
        full_s, _ = timed(lambda: [read_rgb(p) for p in every])
    print(f"folder: {files} JPEGs 224x224, {size_mb:.0f} MiB; the sweep's splits hold {len(every)} files\n")
    print("| step | files decoded | wall s |")
    print("|---|---:|---:|")
    print(f"| open the source (validate before the check) | 0 | {open_s:.3f} |")
    print(f"| list the 8 splits a trial reads | 0 | {list_s:.3f} |")
    print(f"| decode their sample | {decoded} | {check_s:.3f} ({1000 * check_s / decoded:.2f} ms a file) |")
    print(f"| decode every file of those splits (not done) | {len(every)} | {full_s:.3f} |")


if __name__ == "__main__":
    main()
