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

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from chfw.dsp.store.backlog import pending_up_to
from chfw.shared.db.engine import reading
from chfw.shared.recent import Recent

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
        self._recent: Recent[Backlog] = Recent(min_interval, clock, cost_factor=cost_factor)

    def current(self) -> Backlog:
        """The backlog, counted again if the cached value is due for a refresh.

        Database errors propagate (the intake answers 503); the next call
        tries again.
        """
        if self.limit <= 0:
            return Backlog(0, 0)
        return self._recent.get("backlog", self._count)

    def _count(self) -> Backlog:
        with reading(self.engine) as conn:
            return Backlog(pending_up_to(conn, self.limit + 1), self.limit)
