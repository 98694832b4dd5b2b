"""Backpressure at the intake: refuse new work (503, Retry-After) while the outbox is too full.

Every accepted CS06 outcome can add alerts to the outbox; if the delivery
side has fallen far behind (Service Users down, workers stopped), taking
more only grows a queue nobody drains. CSPs retry a 503 after Retry-After
(chfw's own poster does), so nothing is lost: the messages wait at the CSP.

Counting pending rows is not free on a big table, so the count is cached:
refreshed by one request at a time, at most once per ``min_interval``
seconds and never more often than ``cost_factor`` times the last count took
(a slow count on a huge backlog is repeated less often, keeping the check's
own load on the database to about 1/``cost_factor`` of one connection).
Other requests use the last value meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from chfw.store.backlog import pending_up_to
from chfw.store.engine import reading

#: Seconds a CSP is asked to wait when the backlog is over the limit.
RETRY_AFTER_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Backlog:
    """The last count of pending outbox rows (capped just past the limit) and the limit."""

    pending: int
    limit: int

    @property
    def over_limit(self) -> bool:
        return self.limit > 0 and self.pending > self.limit


class BacklogGate:
    """A cached view of the outbox backlog against ``limit`` (0: no limit, nothing counted)."""

    def __init__(
        self,
        engine: Engine,
        limit: int,
        *,
        min_interval: float = 1.0,
        cost_factor: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.min_interval = min_interval
        self.cost_factor = cost_factor
        self.clock = clock
        self._lock = threading.Lock()
        self._last: Backlog | None = None
        self._next_refresh = 0.0

    def current(self) -> Backlog:
        """The backlog, counted again if the cached value is due for a refresh.

        Database errors propagate (the intake answers 503); the next call
        tries again.
        """
        if self.limit <= 0:
            return Backlog(0, 0)
        last = self._last
        if last is not None and self.clock() < self._next_refresh:
            return last
        # One refresher at a time; the others answer from the last count, if there is one.
        if not self._lock.acquire(blocking=last is None):
            assert last is not None
            return last
        try:
            if self._last is not None and self.clock() < self._next_refresh:
                return self._last  # refreshed by another thread while this one waited
            started = self.clock()
            with reading(self.engine) as conn:
                pending = pending_up_to(conn, self.limit + 1)
            took = self.clock() - started
            self._last = Backlog(pending, self.limit)
            self._next_refresh = started + max(self.min_interval, took * self.cost_factor)
            return self._last
        finally:
            self._lock.release()
