"""A long-running process caches its loggers and freezes its start-up heap."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import structlog

from chfw.shared.longrunning import start_long_running


@pytest.fixture
def restored() -> Iterator[None]:
    yield
    gc.unfreeze()
    structlog.configure(cache_logger_on_first_use=False)


def _collectable(obj: object) -> bool:
    """Whether the cyclic collector looks at ``obj`` (frozen objects are out of its reach)."""
    return any(o is obj for o in gc.get_objects())


def test_start_up_objects_leave_the_collector_later_ones_do_not(restored: None) -> None:
    before: list[object] = []
    assert _collectable(before)
    start_long_running()
    after: list[object] = []

    assert structlog.get_config()["cache_logger_on_first_use"] is True
    assert gc.get_freeze_count() > 0
    assert not _collectable(before)
    assert _collectable(after)
    after.append(after)  # a cycle made after start is still collected
    del after
    assert gc.collect() >= 1
