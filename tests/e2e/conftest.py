"""End-to-end tests share one local Ray instance per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """Each test launches from its own folder: ./mlflow.db and ./sweeps land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
