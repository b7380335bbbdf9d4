"""The storage check before a sweep starts: an unwritable or full storage folder is bad input
(exit 2, the field named), found before any MLflow run or Ray trial exists, and the probe leaves
nothing behind."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import yaml

from sweeper.cli import main
from sweeper.run.files import check_writable_folder
from trainables.errors import InputError

Usage = namedtuple("Usage", "total used free")


def test_a_writable_folder_passes_and_the_probe_leaves_nothing(tmp_path: Path) -> None:
    check_writable_folder(str(tmp_path / "a" / "b"), "--storage")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match=r"--storage: .*a-file/sweeps is not writable"):
        check_writable_folder(str(blocker / "sweeps"), "--storage")


def test_a_full_disk_is_refused_before_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    with pytest.raises(InputError, match=r"--storage: .* has 1 MiB free; .* at least 512 MiB"):
        check_writable_folder(str(tmp_path / "sweeps"), "--storage")
    assert list(tmp_path.iterdir()) == []


def test_launch_with_unwritable_storage_exits_2_before_anything_starts(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "s", "method": "ft", "data": {"id": "photo", "ood": ["sketch"]}}))
    assert main(["launch", str(sweep), "--storage", str(tmp_path / "a-file" / "sweeps")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sweeper: error: --storage:") and "not writable" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "s.yaml"]  # no mlflow.db, no sweeps/
