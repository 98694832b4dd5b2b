"""How much the outbox holds undelivered: the intake's backpressure signal, counted cheaply."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.dsp.store.schema import outbox

# An index range on ix_outbox_due: no row's document is read.
_PENDING = sa.select(sa.literal(1)).select_from(outbox).where(outbox.c.state == "pending")


def pending(conn: Connection) -> int:
    """Every pending outbox row, without scanning delivered and dead ones."""
    return _count(conn, _PENDING)


def pending_up_to(conn: Connection, cap: int) -> int:
    """Pending outbox rows, counting no further than ``cap``.

    Whether the backlog is over a limit needs no exact count past it: the
    LIMIT bounds the work (an index range on ``ix_outbox_due``) however big
    the table grows.
    """
    return _count(conn, _PENDING.limit(max(cap, 0)))


def _count(conn: Connection, rows: sa.Select[int]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(rows.subquery())).scalar_one())
