"""Posts a CSP made that chfw could not process (malformed, unknown CH ...), kept for operators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import DeviceId
from chfw.dsp.store.schema import intake_rejections
from chfw.shared.db.sql import from_db, to_db

# Enough for any CS06 answer many times over; a bigger post is kept in part.
PAYLOAD_MAX_BYTES = 64 * 1024
REASON_MAX = 1000


@dataclass(frozen=True, slots=True)
class Rejection:
    id: int
    received_at: datetime
    csp: str | None
    device_id: DeviceId | None
    reason: str
    payload: bytes


def record_rejection(
    conn: Connection,
    *,
    csp: str | None,
    device_id: DeviceId | None,
    reason: str,
    payload: bytes,
    received_at: datetime,
) -> int:
    """Keep a rejected post; payloads over PAYLOAD_MAX_BYTES are cut, and the reason says so."""
    suffix = ""
    if len(payload) > PAYLOAD_MAX_BYTES:
        suffix = f" [payload of {len(payload)} bytes cut to {PAYLOAD_MAX_BYTES}]"
        payload = payload[:PAYLOAD_MAX_BYTES]
    if len(reason) + len(suffix) > REASON_MAX:
        reason = reason[: REASON_MAX - len(suffix) - 1] + "…"
    reason += suffix
    new_id = conn.execute(
        sa.insert(intake_rejections)
        .values(
            received_at=to_db(received_at),
            csp=csp,
            device_id=None if device_id is None else device_id.hex,
            reason=reason,
            payload_hex=payload.hex(),
        )
        .returning(intake_rejections.c.id)
    ).scalar_one()
    return int(new_id)


def list_recent(conn: Connection, limit: int = 50) -> list[Rejection]:
    """The newest rejections first."""
    rows = conn.execute(
        sa.select(intake_rejections).order_by(intake_rejections.c.id.desc()).limit(limit)
    )
    return [
        Rejection(
            id=int(row.id),
            received_at=from_db(row.received_at),
            csp=row.csp,
            device_id=None if row.device_id is None else DeviceId.parse(row.device_id),
            reason=row.reason,
            payload=bytes.fromhex(row.payload_hex),
        )
        for row in rows
    ]


def count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(intake_rejections)).scalar_one())
