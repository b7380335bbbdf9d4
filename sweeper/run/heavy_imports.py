"""Import big libraries without paying for Python's cyclic garbage collector on the way.

Importing torch, MLflow and Ray Tune leaves some 800,000 objects, and the collections that this
allocation triggers scan them again and again. Pausing the collector alone only postpones the
bill (its next collections scan them all); freezing them afterwards (``gc.freeze``: never
scanned again) cancels it. Measured on our 2-core machine, those imports plus a little work
after them cost 5.5 s of CPU with the collector, 5.4 s paused, 3.5-4.1 s paused and frozen
(BENCHMARKS.md, "A sweep's fixed cost"), and every later collection in the process is cheaper.
The price: cyclic garbage that exists when a block ends is never collected, so a block that
imports nothing new (a worker's next trial, a test process) freezes nothing.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def heavy_imports() -> Iterator[None]:
    """No cyclic garbage collection inside the block; what it imported is frozen at its end."""
    modules = len(sys.modules)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if len(sys.modules) > modules:
            gc.freeze()
        if was_enabled:
            gc.enable()
