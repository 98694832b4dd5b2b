"""Writing new outbox rows: alerts built for their recipients (pending), and those that could
not be built (parked).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from chfw.dsp.store.outbox.values import NewAlert, NewParked, _clip
from chfw.dsp.store.schema import outbox
from chfw.shared.db.bulk import driver_time, insert_rows


def enqueue(conn: Connection, alerts: Sequence[NewAlert], now: datetime) -> int:
    """Write alerts as pending and due now, in one executemany; returns how many."""
    if not alerts:
        return 0
    at = driver_time(conn, outbox.c.created_at, now)
    rows = [(*_identity(alert), alert.document, "pending", 0, at, at) for alert in alerts]
    insert_rows(conn, outbox, _COLUMNS, rows)
    return len(rows)


def park(conn: Connection, alerts: Sequence[NewParked], now: datetime) -> int:
    """Write alerts that could not be built as parked rows (empty document, the reason in
    ``last_error``); returns how many."""
    at = driver_time(conn, outbox.c.created_at, now)
    rows = [(*_identity(alert), b"", "parked", 0, at, at, _clip(alert.reason)) for alert in alerts]
    if rows:
        insert_rows(conn, outbox, (*_COLUMNS, "last_error"), rows)
    return len(rows)


def _identity(alert: NewAlert | NewParked) -> tuple[object, ...]:
    """The columns an alert has whether it was built or parked."""
    return (
        alert.response_id,
        alert.user_id.hex,
        alert.device_id.hex,
        alert.alert_code,
        alert.duis_version,
        alert.firmware_version,
        alert.history_id,
    )


_COLUMNS = (
    "response_id",
    "user_id",
    "device_id",
    "alert_code",
    "duis_version",
    "firmware_version",
    "history_id",
    "document",
    "state",
    "attempts",
    "created_at",
    "next_attempt_at",
)
