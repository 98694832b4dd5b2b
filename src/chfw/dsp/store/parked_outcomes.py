"""Outcomes for CHs not in the estate yet, kept until it has them (``parked_outcomes``).

A CS06 outcome for a CH the estate does not have (registration data lags the
CSP) is parked here by the intake instead of being refused: the message's
bytes, its CSP and the outcome's identity (CH, the command's sender,
originator counter, event). The same outcome posted again is not kept twice.
Processing an outcome (however it arrives) deletes its parked copy in the
same transaction; nothing here expires.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import ActivationOutcome, DeviceId
from chfw.dsp.store.inventory import OutcomeIdentity, identity_of
from chfw.dsp.store.schema import hubs, parked_outcomes
from chfw.shared.db.sql import among, from_db, insert_for, to_db


@dataclass(frozen=True, slots=True)
class NewParkedOutcome:
    outcome: ActivationOutcome
    payload: bytes  # the GBCS message (binary)
    csp: str | None


@dataclass(frozen=True, slots=True)
class ParkedOutcome:
    id: int
    device_id: DeviceId
    sender: str  # hex
    originator_counter: int
    event: str
    result: str
    firmware_version: str | None
    csp: str | None
    received_at: datetime
    payload: bytes
    in_estate: bool  # the CH is in the estate now: the next import processes it

    @property
    def key(self) -> str:
        """The outcome's identity as the intake answers it (CH:counter:event)."""
        return f"{self.device_id}:{self.originator_counter}:{self.event}"


def park(conn: Connection, rows: Sequence[NewParkedOutcome], received_at: datetime) -> None:
    """Keep ``rows``; an outcome already parked (same identity) keeps its first copy."""
    if not rows:
        return
    values = []
    for row in rows:
        device, sender, counter, event = identity_of(row.outcome)
        version = row.outcome.firmware_version
        values.append(
            {
                "device_id": device,
                "sender": sender,
                "originator_counter": counter,
                "event": event,
                "result": row.outcome.result.value,
                "firmware_version": version.hex if version is not None else None,
                "payload": row.payload,
                "csp": row.csp,
                "received_at": to_db(received_at),
            }
        )
    statement = insert_for(conn, parked_outcomes).on_conflict_do_nothing(
        index_elements=["device_id", "sender", "originator_counter", "event"]
    )
    conn.execute(statement, values)


def payloads_for(conn: Connection, devices: Iterable[DeviceId]) -> dict[OutcomeIdentity, bytes]:
    """The parked outcomes of these CHs by identity, with the bytes they came in (so that a
    copy with other content can be told from a redelivery)."""
    wanted = {device.hex for device in devices}
    if not wanted:
        return {}
    t = parked_outcomes
    rows = conn.execute(
        sa.select(t.c.device_id, t.c.sender, t.c.originator_counter, t.c.event, t.c.payload).where(
            among(conn, t.c.device_id, wanted)
        )
    )
    return {(r.device_id, r.sender, r.originator_counter, r.event): bytes(r.payload) for r in rows}


def settle(conn: Connection, identities: Iterable[OutcomeIdentity]) -> int:
    """Delete the parked copies of outcomes now processed; how many there were.

    One indexed look-up by CH (one array parameter on PostgreSQL), which finds
    nothing for almost every batch; the rows found are deleted by id.
    """
    wanted = set(identities)
    if not wanted:
        return 0
    t = parked_outcomes
    found = conn.execute(
        sa.select(t.c.id, t.c.device_id, t.c.sender, t.c.originator_counter, t.c.event).where(
            among(conn, t.c.device_id, {identity[0] for identity in wanted})
        )
    ).all()
    ids = [
        int(row.id)
        for row in found
        if (row.device_id, row.sender, row.originator_counter, row.event) in wanted
    ]
    if ids:
        conn.execute(sa.delete(t).where(t.c.id.in_(ids)))
    return len(ids)


def _select(in_estate_only: bool) -> sa.Select[tuple[object, ...]]:
    t = parked_outcomes
    known = sa.exists().where(hubs.c.device_id == t.c.device_id)
    query = sa.select(t, known.label("in_estate"))
    if in_estate_only:
        query = query.where(known)
    return query.order_by(t.c.id)


def _row(row: sa.Row[tuple[object, ...]]) -> ParkedOutcome:
    m = row._mapping
    return ParkedOutcome(
        id=int(m["id"]),
        device_id=DeviceId.parse(str(m["device_id"])),
        sender=str(m["sender"]),
        originator_counter=int(str(m["originator_counter"])),
        event=str(m["event"]),
        result=str(m["result"]),
        firmware_version=None if m["firmware_version"] is None else str(m["firmware_version"]),
        csp=None if m["csp"] is None else str(m["csp"]),
        received_at=from_db(m["received_at"]),
        payload=bytes(m["payload"]),
        in_estate=bool(m["in_estate"]),
    )


def list_parked(conn: Connection, limit: int | None = None) -> list[ParkedOutcome]:
    """Every parked outcome (or the first ``limit``), oldest first."""
    query = _select(in_estate_only=False)
    if limit is not None:
        query = query.limit(limit)
    return [_row(row) for row in conn.execute(query)]


def ready(conn: Connection) -> list[ParkedOutcome]:
    """The parked outcomes whose CH is in the estate now, in received order."""
    return [_row(row) for row in conn.execute(_select(in_estate_only=True))]


def count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(parked_outcomes)).scalar_one())


def count_ready(conn: Connection) -> int:
    """Parked outcomes whose CH is in the estate now (waiting for the next processing)."""
    t = parked_outcomes
    known = sa.exists().where(hubs.c.device_id == t.c.device_id)
    return int(conn.execute(sa.select(sa.func.count()).select_from(t).where(known)).scalar_one())
