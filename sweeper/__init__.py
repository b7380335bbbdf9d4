"""Sweeper: distributed hyperparameter sweeps for robust fine-tuning of CLIP-style models."""

import os

__version__ = "0.1.0"

# `import mlflow` starts a telemetry thread that, offline (clusters, CI), fails to fetch its config
# and deletes an environment variable; a REST call that reads os.environ at that moment (requests'
# proxy lookup) fails with KeyError '_MLFLOW_TELEMETRY_SESSION_ID'. One of 16 trials writing to a
# server lost every epoch so (bench/bench_many_writers.py). Off by default, before MLflow is imported
# in any process that imports Sweeper; MLFLOW_DISABLE_TELEMETRY=false in the environment turns it on.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
