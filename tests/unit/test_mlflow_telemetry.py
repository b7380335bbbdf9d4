"""MLflow's telemetry is off in any process that imports Sweeper before MLflow (Ray's trial workers
do): its thread deleted an environment variable while a trial's REST call read os.environ, and
that trial's writes were lost (bench/bench_many_writers.py, 16 writers on the PostgreSQL server).

MLflow itself turns telemetry off under pytest and CI (PYTEST_CURRENT_TEST, CI, ...), so the probe
runs without those variables, and the second test shows that telemetry is then really on unless
Sweeper turns it off. A dead proxy keeps that probe's telemetry thread off the network."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sweeper.tracking.runs
from mlflow.telemetry.client import get_telemetry_client
print(get_telemetry_client() is not None)
"""
# The variables MLflow 3.17 reads as "in CI or testing" that this suite's runs set.
CI_MARKERS = {"PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY"}
DEAD_PROXY = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


def telemetry_on(**env: str) -> bool:
    clean = {k: v for k, v in os.environ.items() if k not in CI_MARKERS and k.lower() not in ("no_proxy",)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **DEAD_PROXY, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip() == "True"


def test_importing_sweeper_turns_mlflow_telemetry_off() -> None:
    assert not telemetry_on()


def test_it_is_on_without_sweeper_s_default_and_the_user_can_turn_it_back_on() -> None:
    assert telemetry_on(MLFLOW_DISABLE_TELEMETRY="false")
