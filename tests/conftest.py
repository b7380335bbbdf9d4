"""Test-session settings: one torch thread, and a private on-disk cache per session."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the tests' data and feature caches out of the user's ~/.cache."""
    os.environ["SWEEPER_CACHE"] = str(tmp_path_factory.mktemp("sweeper-cache"))
