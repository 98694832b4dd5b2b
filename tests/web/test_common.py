"""The dashboards' read cache: polling viewers share one read per key and period."""

from __future__ import annotations

from functools import partial

from chfw.web.common import Recent, fingerprint


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


class TestFingerprint:
    """Charts are fetched again only when the figures they show change."""

    def test_stable_and_sensitive(self) -> None:
        assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
        assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})
