"""``sweeper.failure`` is on a trial run only while its last attempt failed; earlier attempts' errors
are kept, numbered, in ``sweeper.failure_history`` (written by ``TrialRun`` into a real sqlite store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweeper.tracking.failure_tags import (
    FAILURE_HISTORY_TAG,
    FAILURE_TAG,
    LINE_LIMIT,
    TAG_VALUE_LIMIT,
    with_attempt,
)
from sweeper.tracking.runs import TrialRun, start_sweep


def attempt(sweep, error: Exception | None) -> None:
    """One attempt of trial t0: raises ``error``, or finishes."""
    if error is None:
        with TrialRun(sweep, "t0", "t0", {"lr": 1}, {}):
            return
    with pytest.raises(type(error)), TrialRun(sweep, "t0", "t0", {"lr": 1}, {}):
        raise error


def test_attempts_are_numbered_on_one_line_each() -> None:
    history = with_attempt("", "RuntimeError: first\n  detail")
    history = with_attempt(history, "OSError: second")
    assert history == "attempt 1: RuntimeError: first detail\nattempt 2: OSError: second"


def test_a_long_history_keeps_the_newest_attempts_within_mlflows_limit() -> None:
    history = ""
    for n in range(1, 31):
        history = with_attempt(history, f"RuntimeError: {n} " + "x" * 2000)
    lines = history.splitlines()
    assert len(history) <= TAG_VALUE_LIMIT and all(len(line) == LINE_LIMIT for line in lines)
    assert lines[-1].startswith("attempt 30: RuntimeError: 30 ") and lines[0].startswith(f"attempt {31 - len(lines)}: ")
    # numbering goes on from the newest line kept, not from the count of lines
    assert with_attempt(history, "E: next").splitlines()[-1] == "attempt 31: E: next"


def test_the_failure_tag_holds_the_last_attempts_error_and_goes_when_a_retry_finishes(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = start_sweep("s", None, uri, {})
    client = MlflowClient(uri)

    def tags() -> dict[str, str]:
        return client.search_runs([sweep.experiment_id], "tags.`sweeper.trial_id` = 't0'")[0].data.tags

    attempt(sweep, RuntimeError("worker lost"))
    assert tags()[FAILURE_TAG] == "RuntimeError: worker lost" and FAILURE_HISTORY_TAG not in tags()
    attempt(sweep, OSError("disk full"))  # a retry that fails too: the tag says why the last one did
    assert tags()[FAILURE_TAG] == "OSError: disk full"
    assert tags()[FAILURE_HISTORY_TAG] == "attempt 1: RuntimeError: worker lost"
    assert len(client.search_runs([sweep.experiment_id], f"tags.`{FAILURE_TAG}` != ''")) == 1  # the UI's filter
    attempt(sweep, None)  # the next retry finishes: the run did not fail, its history stays
    run = client.search_runs([sweep.experiment_id], "tags.`sweeper.trial_id` = 't0'")[0]
    assert run.info.status == "FINISHED" and FAILURE_TAG not in run.data.tags
    assert run.data.tags[FAILURE_HISTORY_TAG] == "attempt 1: RuntimeError: worker lost\nattempt 2: OSError: disk full"
    # the UI's filter for failed runs no longer lists it
    assert client.search_runs([sweep.experiment_id], f"tags.`{FAILURE_TAG}` != ''") == []
