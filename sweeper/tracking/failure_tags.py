"""How a trial run records its failures: the reason it failed, and the errors of retried attempts.

``sweeper.failure`` is on a run only while its last attempt failed, so the MLflow UI's filter
``tags.sweeper.failure != ''`` lists exactly the trials that failed in the end. A trial that Tune
retried keeps the errors of its earlier attempts in ``sweeper.failure_history``, one line each,
``attempt N: Kind: message``, numbered in the order they were recorded. This module imports no
MLflow: ``sweeper status`` reads these tags too.
"""

from __future__ import annotations

import re

FAILURE_TAG = "sweeper.failure"
FAILURE_HISTORY_TAG = "sweeper.failure_history"
# MLflow's MAX_TAG_VAL_LENGTH; a longer value is refused, which would lose the whole tag.
TAG_VALUE_LIMIT = 8000
FAILURE_LIMIT = 5000  # of sweeper.failure: a long message must not push a history line out alone
LINE_LIMIT = 1000  # of one history line: many attempts fit, each still readable
_ATTEMPT = re.compile(r"^attempt (\d+): ")


def failure_text(kind: type[BaseException], error: BaseException | None) -> str:
    """The value of ``sweeper.failure`` for an attempt that raised ``error``."""
    return f"{kind.__name__}: {error}"[:FAILURE_LIMIT]


def with_attempt(history: str, failure: str) -> str:
    """``history`` with ``failure`` added as the next attempt's line (on one line, cut to
    LINE_LIMIT); the oldest lines are dropped when the whole would pass MLflow's tag value limit."""
    lines = history.splitlines()
    numbers = [int(m.group(1)) for m in map(_ATTEMPT.match, lines) if m]
    attempt = max(numbers, default=0) + 1
    lines.append(f"attempt {attempt}: {' '.join(failure.split())}"[:LINE_LIMIT])
    while len("\n".join(lines)) > TAG_VALUE_LIMIT:
        lines.pop(0)
    return "\n".join(lines)
