"""Values read at most once per period, shared by every caller: the cache in front of aggregate
reads (dashboards, /metrics, the intake's backlog gate)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Recent(Generic[V]):
    """The last value read for each key, read again once its period has passed.

    The period is ``seconds``, or ``cost_factor`` times as long as the last read
    took if that is longer: an aggregate over a big outbox that takes 2 s is read
    at most every 20 s, so it keeps the database busy at most a tenth of the time
    however many viewers poll or scrapers scrape. One read per key at a time:
    while it runs, callers that have a value get that one; the first callers of a
    key wait for it. An exception from ``read`` reaches its caller and nothing is
    kept, so the next call reads again. ``seconds`` 0 turns the cache off: every
    call reads.
    """

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        cost_factor: float = 10.0,
        size: int = 64,
    ) -> None:
        self.seconds = seconds
        self.cost_factor = cost_factor
        self._clock = clock
        self._size = size
        self._lock = threading.Lock()
        self._values: dict[Hashable, tuple[float, V]] = {}  # key -> (next read due, value)
        self._reading: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, read: Callable[[], V]) -> V:
        if self.seconds <= 0:
            return read()
        with self._lock:
            found = self._values.get(key)
            reading = self._reading.setdefault(key, threading.Lock())
        if found is not None and self._clock() < found[0]:
            return found[1]
        if not reading.acquire(blocking=found is None):
            assert found is not None
            return found[1]  # another caller is reading it now
        try:
            with self._lock:
                latest = self._values.get(key)
            if latest is not None and self._clock() < latest[0]:
                return latest[1]  # read by another caller while this one waited
            started = self._clock()
            value = read()
            due = started + max(self.seconds, (self._clock() - started) * self.cost_factor)
            with self._lock:
                if len(self._values) >= self._size and key not in self._values:
                    self._values.clear()
                    self._reading = {k: lock for k, lock in self._reading.items() if lock.locked()}
                    self._reading[key] = reading
                self._values[key] = (due, value)
            return value
        finally:
            reading.release()
