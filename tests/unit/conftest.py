"""Unit-test settings: trials in these tests evaluate retention on a tiny set of images."""

from __future__ import annotations

import pytest

# Images per class and domain in the shapes world's zero-shot retention tasks (zs/*) during unit
# tests; trials use 40 (2,400 images). The unit tests run trials on a few images per class and
# check retention's keys, its path and its caching, never its values (those are the zoo cards',
# measured by test_zoo_quality on their own images): at 40, retention was about 8 s of each tiny
# trial's 9 s and half of the fast suite's time. 4 matches the tests' usual test split.
RETENTION_PER_CLASS = 4


@pytest.fixture(autouse=True)
def small_retention_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Per test, not per session: a session fixture here would stay patched for tests that run
    # after tests/unit in the same session.
    from trainables.data import shapes_source

    monkeypatch.setattr(shapes_source, "RETENTION_PER_CLASS", RETENTION_PER_CLASS)
