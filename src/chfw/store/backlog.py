"""How much the outbox holds undelivered: the intake's backpressure signal, counted cheaply."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.store.schema import outbox


def pending_up_to(conn: Connection, cap: int) -> int:
    """Pending outbox rows, counting no further than ``cap``.

    Whether the backlog is over a limit needs no exact count past it: the
    LIMIT bounds the work (an index range on ``ix_outbox_due``) however big
    the table grows.
    """
    inner = (
        sa.select(sa.literal(1))
        .select_from(outbox)
        .where(outbox.c.state == "pending")
        .limit(max(cap, 0))
        .subquery()
    )
    return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())
