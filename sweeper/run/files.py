"""Result files that a crash never leaves half-written, and the storage check before a sweep."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from trainables.errors import InputError


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place. The file
    gets the umask's usual mode (mkstemp's 0600 would hide a report from a web server)."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Below this, a sweep's checkpoints (one per trial and epoch kept) would fill the disk mid-sweep.
MIN_FREE_BYTES = 512 * 2**20


def check_writable_folder(folder: str, field: str, min_free: int = MIN_FREE_BYTES) -> None:
    """Refuse, before a sweep starts, a local folder that cannot be created or written, or whose
    disk has less than ``min_free`` bytes free. Leaves nothing behind: folders it had to create
    to probe are removed again."""
    path = Path(folder)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path) as probe:
            probe.write(b"sweeper storage probe")
            probe.flush()
            os.fsync(probe.fileno())
        free = shutil.disk_usage(path).free
    except OSError as error:
        raise InputError(field, f"{folder} is not writable: {error.strerror or error}") from None
    finally:
        for created in missing:  # deepest first
            with contextlib.suppress(OSError):
                created.rmdir()
    if free < min_free:
        raise InputError(
            field,
            (
                f"{folder} has {free / 2**20:.0f} MiB free; a sweep's checkpoints need "
                f"at least {min_free / 2**20:.0f} MiB there. Free space or give another --storage"
            ),
        )
