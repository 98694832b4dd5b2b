"""The read cache in front of aggregate reads: callers share one read per key and period."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from chfw.shared.recent import Recent


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestRecent:
    """A value is read again only when its period has passed, separately per key."""

    def test_reads_once_per_period_and_key(self) -> None:
        clock = Clock()
        recent: Recent[int] = Recent(5.0, clock)
        reads: list[str] = []

        def read(key: str) -> int:
            reads.append(key)
            return len(reads)

        assert recent.get("a", lambda: read("a")) == 1
        clock.now += 4.9
        assert recent.get("a", lambda: read("a")) == 1
        assert recent.get("b", lambda: read("b")) == 2
        clock.now += 0.2
        assert recent.get("a", lambda: read("a")) == 3
        assert reads == ["a", "b", "a"]

    def test_zero_seconds_always_reads(self) -> None:
        recent: Recent[int] = Recent(0.0, Clock())
        values = iter(range(3))
        assert [recent.get("k", lambda: next(values)) for _ in range(3)] == [0, 1, 2]

    def test_bounded(self) -> None:
        recent: Recent[int] = Recent(60.0, Clock(), size=4)
        for key in range(10):
            recent.get(key, partial(int, key))
        assert len(recent._values) <= 4
        assert len(recent._reading) <= 4

    def test_a_slow_read_is_repeated_less_often(self) -> None:
        clock = Clock()
        recent: Recent[int] = Recent(1.0, clock, cost_factor=10)
        reads = iter(range(10))

        def slow() -> int:
            clock.now += 0.5  # the read "takes" 0.5 s: next one due 5 s after it began
            return next(reads)

        assert recent.get("k", slow) == 0
        clock.now += 3.0
        assert recent.get("k", slow) == 0
        clock.now += 2.0
        assert recent.get("k", slow) == 1

    def test_one_read_at_a_time_others_keep_the_last_value(self) -> None:
        clock = Clock()
        recent: Recent[str] = Recent(1.0, clock)
        assert recent.get("k", lambda: "old") == "old"
        clock.now += 2.0
        started, release = threading.Event(), threading.Event()

        def blocking_read() -> str:
            started.set()
            release.wait(5)
            return "new"

        results: list[str] = []
        reader = threading.Thread(target=lambda: results.append(recent.get("k", blocking_read)))
        reader.start()
        assert started.wait(5)
        # While that read runs, nobody else reads: they get the value they had.
        assert recent.get("k", lambda: pytest.fail("a second read ran")) == "old"
        release.set()
        reader.join(5)
        assert results == ["new"]
        assert recent.get("k", lambda: "unused") == "new"

    def test_a_failed_read_is_not_kept(self) -> None:
        recent: Recent[int] = Recent(60.0, Clock())

        def broken() -> int:
            raise OSError("database down")

        with pytest.raises(OSError, match="database down"):
            recent.get("k", broken)
        assert recent.get("k", lambda: 7) == 7
