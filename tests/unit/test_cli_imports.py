"""The CLI's parser is built without torch, Ray or MLflow: `sweeper --help` must not wait for them.

A fresh interpreter per check, because this test process has long since imported all three.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "ray", "mlflow", "open_clip")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


@pytest.mark.parametrize("code", [
    "import sweeper.cli",
    "from sweeper.cli import build_parser; build_parser()",
    "from trainables.models import zoo; zoo.names(); zoo.read_card(zoo.names()[0])",
])
def test_no_heavy_import(code: str) -> None:
    loaded = _modules_after(code)
    assert not [name for name in HEAVY if name in loaded], code


def test_help_prints_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "sweeper.cli", "--help"], capture_output=True, text=True,
                         check=True, timeout=120)
    for command in ("launch", "validate", "methods", "status", "report", "confirm"):
        assert command in out.stdout
