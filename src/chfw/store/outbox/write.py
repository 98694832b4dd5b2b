"""Writing new outbox rows: alerts built for their recipients (pending), and those that could
not be built (parked).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from chfw.store.bulk import driver_time, insert_rows
from chfw.store.outbox.values import NewAlert, NewParked, _clip
from chfw.store.schema import outbox


def enqueue(conn: Connection, alerts: Sequence[NewAlert], now: datetime) -> int:
    """Write alerts as pending and due now, in one executemany; returns how many."""
    if not alerts:
        return 0
    at = driver_time(conn, outbox.c.created_at, now)
    rows = [
        (
            alert.response_id,
            alert.user_id.hex,
            alert.device_id.hex,
            alert.alert_code,
            alert.duis_version,
            alert.firmware_version,
            alert.history_id,
            alert.document,
            "pending",
            0,
            at,
            at,
        )
        for alert in alerts
    ]
    insert_rows(conn, outbox, _ENQUEUE_COLUMNS, rows)
    return len(alerts)


_ENQUEUE_COLUMNS = (
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


def park(conn: Connection, alerts: Sequence[NewParked], now: datetime) -> int:
    """Write alerts that could not be built as parked rows (empty document, the reason in
    ``last_error``); returns how many."""
    if not alerts:
        return 0
    at = driver_time(conn, outbox.c.created_at, now)
    rows = [
        (
            alert.response_id,
            alert.user_id.hex,
            alert.device_id.hex,
            alert.alert_code,
            alert.duis_version,
            alert.firmware_version,
            alert.history_id,
            b"",
            "parked",
            0,
            at,
            at,
            _clip(alert.reason),
        )
        for alert in alerts
    ]
    insert_rows(conn, outbox, (*_ENQUEUE_COLUMNS, "last_error"), rows)
    return len(alerts)
