"""Reading the outbox: rows and their attempts for operators, counts for dashboards and metrics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.dsp.store.outbox.values import (
    LIST_STATES,
    AttemptRow,
    CountRow,
    OutboxCounts,
    OutboxDetail,
    OutboxRow,
)
from chfw.dsp.store.schema import delivery_attempts, outbox
from chfw.exceptions import InvalidValueError
from chfw.shared.db.sql import from_db, from_db_opt, to_db

_ROW_COLUMNS = (
    outbox.c.id,
    outbox.c.response_id,
    outbox.c.user_id,
    outbox.c.device_id,
    outbox.c.alert_code,
    outbox.c.duis_version,
    outbox.c.firmware_version,
    outbox.c.history_id,
    outbox.c.state,
    outbox.c.attempts,
    outbox.c.created_at,
    outbox.c.next_attempt_at,
    outbox.c.lease_until,
    outbox.c.delivered_at,
    outbox.c.last_error,
    sa.func.length(outbox.c.document).label("document_size"),
)


def row_of(row: Any) -> OutboxRow:
    """A row selected with the outbox's listing columns (or the same labels) as an OutboxRow."""
    return OutboxRow(
        id=row.id,
        response_id=row.response_id,
        user_id=row.user_id,
        device_id=row.device_id,
        alert_code=row.alert_code,
        duis_version=row.duis_version,
        firmware_version=row.firmware_version,
        history_id=row.history_id,
        state=row.state,
        attempts=row.attempts,
        created_at=from_db(row.created_at),
        next_attempt_at=from_db(row.next_attempt_at),
        lease_until=from_db_opt(row.lease_until),
        delivered_at=from_db_opt(row.delivered_at),
        last_error=row.last_error,
        document_size=int(row.document_size or 0),
    )


def list_rows(
    conn: Connection,
    state: str | None = None,
    user_id: str | None = None,
    device_id: str | None = None,
    limit: int = 50,
) -> list[OutboxRow]:
    """Newest rows first, filtered by state (or ``retrying``), user and CH (hex ids)."""
    query = sa.select(*_ROW_COLUMNS).order_by(outbox.c.id.desc()).limit(limit)
    if state is not None:
        if state not in LIST_STATES:
            raise InvalidValueError(
                f"outbox state {state!r} is not one of {', '.join(sorted(LIST_STATES))}"
            )
        if state == "retrying":
            query = query.where(outbox.c.state == "pending", outbox.c.attempts > 0)
        else:
            query = query.where(outbox.c.state == state)
    if user_id is not None:
        query = query.where(outbox.c.user_id == user_id)
    if device_id is not None:
        query = query.where(outbox.c.device_id == device_id)
    return [row_of(row) for row in conn.execute(query)]


def _id_of(conn: Connection, key: int | str) -> int | None:
    if isinstance(key, int) or key.strip().isdigit():
        outbox_id = int(key)
        exists = conn.execute(sa.select(outbox.c.id).where(outbox.c.id == outbox_id)).first()
        return outbox_id if exists else None
    found: int | None = conn.execute(
        sa.select(outbox.c.id).where(outbox.c.response_id == key.strip())
    ).scalar()
    return found


def get(conn: Connection, key: int | str) -> OutboxDetail | None:
    """One row by outbox id or ResponseID, with its document and attempts; None if unknown."""
    outbox_id = _id_of(conn, key)
    if outbox_id is None:
        return None
    row = conn.execute(
        sa.select(*_ROW_COLUMNS, outbox.c.document).where(outbox.c.id == outbox_id)
    ).one()
    attempts = conn.execute(
        sa.select(delivery_attempts)
        .where(delivery_attempts.c.outbox_id == outbox_id)
        .order_by(delivery_attempts.c.id)
    )
    return OutboxDetail(
        row=row_of(row), document=bytes(row.document), attempts=attempt_rows(attempts)
    )


def attempt_rows(rows: Iterable[Any]) -> tuple[AttemptRow, ...]:
    """Rows of ``delivery_attempts`` (or its archive) as AttemptRows."""
    return tuple(
        AttemptRow(
            attempted_at=from_db(a.attempted_at),
            outcome=a.outcome,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
        )
        for a in rows
    )


def counts(conn: Connection) -> OutboxCounts:
    """Rows per state, plus the retrying part of pending."""
    tried = sa.case((outbox.c.attempts > 0, 1), else_=0)
    rows = conn.execute(
        sa.select(outbox.c.state, sa.func.count(), sa.func.sum(tried)).group_by(outbox.c.state)
    )
    by_state = {state: (int(count), int(retried or 0)) for state, count, retried in rows}
    pending, retrying = by_state.get("pending", (0, 0))
    return {
        "pending": pending,
        "retrying": retrying,
        "delivered": by_state.get("delivered", (0, 0))[0],
        "dead": by_state.get("dead", (0, 0))[0],
        "parked": by_state.get("parked", (0, 0))[0],
    }


def counts_by(conn: Connection) -> list[CountRow]:
    """Rows per (alert code, user, state), with the retrying part of pending groups."""
    tried = sa.case((sa.and_(outbox.c.state == "pending", outbox.c.attempts > 0), 1), else_=0)
    rows = conn.execute(
        sa.select(
            outbox.c.alert_code,
            outbox.c.user_id,
            outbox.c.state,
            sa.func.count(),
            sa.func.sum(tried),
            sa.func.min(outbox.c.created_at),
        )
        .group_by(outbox.c.alert_code, outbox.c.user_id, outbox.c.state)
        .order_by(outbox.c.alert_code, outbox.c.user_id, outbox.c.state)
    )
    return [
        CountRow(
            alert_code=code,
            user_id=user,
            state=state,
            count=int(n),
            retrying=int(r or 0),
            oldest_created=from_db_opt(oldest),
        )
        for code, user, state, n, r, oldest in rows
    ]


def oldest_undelivered(rows: Iterable[CountRow], now: datetime) -> dict[str, float]:
    """Per user (hex), seconds since its oldest pending (not yet delivered) alert was made:
    the figure an alert on a supplier outage hangs on. Users with nothing pending are absent."""
    oldest: dict[str, datetime] = {}
    for row in rows:
        if row.state != "pending" or row.oldest_created is None:
            continue
        if row.user_id not in oldest or row.oldest_created < oldest[row.user_id]:
            oldest[row.user_id] = row.oldest_created
    return {user: max(0.0, (now - at).total_seconds()) for user, at in oldest.items()}


def oldest_due_age(conn: Connection, now: datetime) -> float | None:
    """Seconds the longest-waiting due pending row has been due; None when nothing is due."""
    at = to_db(now)
    oldest = conn.execute(
        sa.select(sa.func.min(outbox.c.next_attempt_at)).where(
            outbox.c.state == "pending", outbox.c.next_attempt_at <= at
        )
    ).scalar()
    if oldest is None:
        return None
    return max(0.0, (at - from_db(oldest)).total_seconds())


def next_due_at(conn: Connection) -> datetime | None:
    """When the earliest pending row falls due (for "N still pending, next at ..." messages)."""
    earliest = conn.execute(
        sa.select(sa.func.min(outbox.c.next_attempt_at)).where(outbox.c.state == "pending")
    ).scalar()
    return from_db_opt(earliest)
