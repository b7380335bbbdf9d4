"""Writes to a sqlite MLflow store that another trial holds locked: retried, with backoff, not lost.

MLflow opens every sqlite session with ``busy_timeout = 20000`` ms, but SQLite's busy handler
gives up at once (``database is locked``) when waiting could deadlock two writers, and a store that
many trials write at once can also keep one writer waiting past the timeout. The failed
transaction is rolled back whole, so writing it again cannot duplicate anything. Measured limit and
figures: BENCHMARKS.md, "Many trials logging at once".
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

LOCKED = "database is locked"
# Up to 8 attempts, waiting about 0.2, 0.4 ... 10 s between them (plus MLflow's 20 s busy timeout
# inside each): a write given up on has waited minutes, long past any sound trial's epoch.
ATTEMPTS = 8
FIRST_WAIT_S = 0.2
MAX_WAIT_S = 10.0


def is_locked(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) is sqlite's lock error; MLflow wraps
    SQLAlchemy's OperationalError in an MlflowException, and a server returns it as text."""
    seen: BaseException | None = error
    for _ in range(8):  # a cause chain is short; the bound keeps a cyclic one finite
        if seen is None:
            return False
        if LOCKED in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_locked(call: Callable[[], T], attempts: int = ATTEMPTS, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, again after a growing, jittered wait each time sqlite reports the store locked;
    the last attempt's error propagates, as does any other error at once."""
    wait = FIRST_WAIT_S
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as error:
            if attempt == attempts or not is_locked(error):
                raise
        # Jitter: writers that collided must not all come back at the same instant.
        sleep(wait * random.uniform(0.5, 1.0))  # spreads retries; not a secret
        wait = min(wait * 2, MAX_WAIT_S)
    raise AssertionError("unreachable: the last attempt returns or raises")
