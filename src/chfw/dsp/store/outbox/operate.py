"""Operator actions on outbox rows: retry now, replay dead letters, build parked rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.dsp.store import audit
from chfw.dsp.store.outbox.report import _id_of
from chfw.dsp.store.outbox.values import BulkChange, ParkedRow, Unparked, _clip
from chfw.dsp.store.schema import outbox
from chfw.shared.db.sql import IN_LIST_MAX, among, chunked, to_db


def parked_ids(conn: Connection, user_id: str | None = None) -> list[int]:
    """Ids of every parked row (of one user, hex, when given), oldest first."""
    query = sa.select(outbox.c.id).where(outbox.c.state == "parked").order_by(outbox.c.id)
    if user_id is not None:
        query = query.where(outbox.c.user_id == user_id)
    return list(conn.execute(query).scalars())


def parked_rows(conn: Connection, ids: Sequence[int]) -> list[ParkedRow]:
    """The rows among ``ids`` that are parked, oldest first."""
    found: list[ParkedRow] = []
    for chunk in chunked(list(dict.fromkeys(ids)), IN_LIST_MAX):
        rows = conn.execute(
            sa.select(
                outbox.c.id,
                outbox.c.response_id,
                outbox.c.user_id,
                outbox.c.device_id,
                outbox.c.alert_code,
                outbox.c.duis_version,
                outbox.c.firmware_version,
                outbox.c.history_id,
            ).where(among(conn, outbox.c.id, chunk), outbox.c.state == "parked")
        )
        found.extend(ParkedRow(*row) for row in rows)
    return sorted(found, key=lambda row: row.id)


def unpark(conn: Connection, built: Sequence[Unparked], now: datetime) -> list[int]:
    """Parked rows built: pending, due now, created now (the retry horizon counts from the
    document's making); returns the ids changed (a row no longer parked is left alone)."""
    at = to_db(now)
    changed: list[int] = []
    for alert in built:
        result = conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == alert.id, outbox.c.state == "parked")
            .values(
                state="pending",
                alert_code=alert.alert_code,
                duis_version=alert.duis_version,
                document=alert.document,
                attempts=0,
                created_at=at,
                next_attempt_at=at,
                lease_until=None,
                last_error=None,
            )
        )
        if result.rowcount:
            changed.append(alert.id)
    return changed


def still_parked(conn: Connection, reasons: dict[int, str]) -> None:
    """Parked rows that failed to build again: their new reason in ``last_error``."""
    for outbox_id, reason in reasons.items():
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == outbox_id, outbox.c.state == "parked")
            .values(last_error=_clip(reason))
        )


def _states_of(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in chunked(ids, IN_LIST_MAX):
        rows = conn.execute(
            sa.select(outbox.c.id, outbox.c.state).where(among(conn, outbox.c.id, chunk))
        )
        found.update({row.id: row.state for row in rows})
    return found


def _change(
    conn: Connection, ids: Sequence[int], from_state: str, values: dict[str, Any]
) -> BulkChange:
    unique = list(dict.fromkeys(ids))
    states = _states_of(conn, unique)
    changed = [i for i in unique if states.get(i) == from_state]
    for chunk in chunked(changed, IN_LIST_MAX):
        conn.execute(
            sa.update(outbox)
            .where(among(conn, outbox.c.id, chunk), outbox.c.state == from_state)
            .values(**values)
        )
    return BulkChange(
        changed=tuple(changed),
        skipped={i: s for i, s in states.items() if s != from_state},
        missing=tuple(i for i in unique if i not in states),
    )


def retry_now(conn: Connection, ids: Sequence[int], now: datetime) -> BulkChange:
    """Make pending rows due now (an operator's "try again", e.g. after an endpoint fix)."""
    return _change(conn, ids, "pending", {"next_attempt_at": to_db(now)})


def make_due(
    conn: Connection, now: datetime, user_id: str | None = None, *, actor: str | None = None
) -> int:
    """Every pending row (of one user, hex, when given) waiting for a later try: due now.

    Rows leased by a worker are left alone (they are being tried). The order per (CH,
    user) still holds: a later row waits for an earlier one at the claim. Used by
    operators (``chfw outbox retry --user | --all``, audited under ``actor``) and by
    workers when an endpoint that was failing answers again. Returns how many rows.
    """
    at = to_db(now)
    query = (
        sa.update(outbox)
        .where(
            outbox.c.state == "pending",
            outbox.c.next_attempt_at > at,
            sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= at),
        )
        .values(next_attempt_at=at)
    )
    if user_id is not None:
        query = query.where(outbox.c.user_id == user_id)
    count = conn.execute(query).rowcount or 0
    if actor is not None:
        audit.record(conn, actor, "outbox.retry_now", {"user_id": user_id, "count": count}, at=at)
    return count


def replay(conn: Connection, ids: Sequence[int], actor: str, now: datetime) -> BulkChange:
    """Dead rows back to pending and due now, attempts kept; audited under ``actor``.

    The retry horizon still counts from the row's creation, so a replayed row
    that fails temporarily again is dead-lettered after that one attempt.
    """
    at = to_db(now)
    change = _change(
        conn, ids, "dead", {"state": "pending", "next_attempt_at": at, "lease_until": None}
    )
    if change.changed:
        audit.record(
            conn,
            actor,
            "outbox.replay",
            {"ids": list(change.changed[:1000]), "count": len(change.changed)},
            at=at,
        )
    return change


def dead_ids(conn: Connection, user_id: str | None = None) -> list[int]:
    """Ids of every dead row (of one user, hex, when given), oldest first."""
    query = sa.select(outbox.c.id).where(outbox.c.state == "dead").order_by(outbox.c.id)
    if user_id is not None:
        query = query.where(outbox.c.user_id == user_id)
    return list(conn.execute(query).scalars())


def resolve(conn: Connection, keys: Sequence[str]) -> dict[str, int | None]:
    """Map operator input (an outbox id or a ResponseID) to outbox ids; None when unknown."""
    found: dict[str, int | None] = {}
    for key in keys:
        found[key] = _id_of(conn, key)
    return found
