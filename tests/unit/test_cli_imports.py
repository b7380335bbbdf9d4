"""The CLI's parser is built without torch, Ray or MLflow: `sweeper --help` must not wait for them.
`sweeper validate` and `sweeper methods` import nothing that only training or evaluation uses,
torch included: they read the methods' declarations (``trainables/methods/params/``).

A fresh interpreter per check, because this test process has long since imported all three.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "ray", "mlflow", "open_clip")
ROOT = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        "import sweeper.cli",
        "from sweeper.cli import build_parser; build_parser()",
        "from trainables.models import zoo; zoo.names(); zoo.read_card(zoo.names()[0])",
    ],
)
def test_no_heavy_import(code: str) -> None:
    loaded = _modules_after(code)
    assert not [name for name in HEAVY if name in loaded], code


def test_help_prints_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sweeper.cli", "--help"], capture_output=True, text=True, check=True, timeout=120
    )
    for command in ("launch", "validate", "methods", "status", "report", "confirm"):
        assert command in out.stdout


# What a trial needs and a sweep file's checks do not: each costs one to three seconds to import.
# (A prompt method whose ctx_init is text counts its tokens with CLIP's BPE vocabulary, read
# without open_clip.)
TRAINING_ONLY = ("torch", "open_clip", "torchvision", "torchmetrics", "sklearn", "ray", "mlflow")
SPACES = "search_spaces"


@pytest.mark.parametrize(
    "code",
    [
        f"from sweeper.cli import main; main(['validate', '{SPACES}/ablation-L.yaml'])",
        f"from sweeper.cli import main; main(['validate', '{SPACES}/tpe-methods.yaml'])",
        f"from sweeper.cli import main; main(['validate', '{SPACES}/compare-methods.yaml'])",  # prompt methods
        "from sweeper.cli import main; main(['methods'])",
    ],
)
def test_validate_and_methods_skip_what_only_training_imports(code: str) -> None:
    loaded = _modules_after(f"import os; os.chdir({str(ROOT)!r})\n{code}")
    assert not [name for name in TRAINING_ONLY if name in loaded], code


def test_the_driver_hands_trials_to_ray_without_importing_what_they_run() -> None:
    # A trial's module (torch and the training loop) is imported by the worker that runs it
    # (sweeper.run.trial_entry), not by the driver that launches the sweep.
    loaded = _modules_after("import sweeper.run.launch, sweeper.run.resume")
    assert not [name for name in ("sweeper.run.trial", "open_clip") if name in loaded]
