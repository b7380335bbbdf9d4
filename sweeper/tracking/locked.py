"""Writes to an MLflow store that other trials keep busy: retried, with backoff, not lost.

Two errors mean "busy, try again", and neither is retried by MLflow itself:

- sqlite's ``database is locked``. MLflow opens every sqlite session with ``busy_timeout = 20000``
  ms, but SQLite's busy handler gives up at once when waiting could deadlock two writers, and a
  store that many trials write at once can keep one writer waiting past the timeout.
- a server's ``QueuePool limit ... reached``, sent as HTTP 400: MLflow 3.17's ``log_batch`` holds
  two database connections at once (a session inside a session), so about 8 writers at once can
  take a server worker's whole pool (5 + 10 overflow) and the rest time out after 30 s.

The failed transaction is rolled back whole, so writing it again cannot duplicate anything.
Figures: BENCHMARKS.md, "Many trials logging at once".
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

BUSY = ("database is locked", "QueuePool limit")
# Up to 8 attempts, waiting about 0.2, 0.4 ... 10 s between them (plus the 20 s busy timeout or
# the 30 s pool timeout inside each): a write given up on has waited minutes.
ATTEMPTS = 8
FIRST_WAIT_S = 0.2
MAX_WAIT_S = 10.0


def is_locked(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) says the store is busy (above); MLflow
    wraps SQLAlchemy's errors in an MlflowException, and a server returns them as text."""
    seen: BaseException | None = error
    for _ in range(8):  # a cause chain is short; the bound keeps a cyclic one finite
        if seen is None:
            return False
        if any(busy in str(seen) for busy in BUSY):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_locked(call: Callable[[], T], attempts: int = ATTEMPTS, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, again after a growing, jittered wait each time the store reports itself busy;
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
