"""The supplier's back office: record verified alerts, keep each CH's active firmware.

Delivery is at-least-once and alerts for one CH may arrive out of order
(a replayed dead letter, two DSP workers): the active version is the one with
the latest alert time, and an older alert is kept in the history only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.domain import DeviceId, FirmwareVersion
from chfw.receiver.facts import AlertFacts
from chfw.receiver.schema import bo_alerts, bo_firmware_events, bo_hubs, bo_rejections
from chfw.store._sql import from_db as aware
from chfw.store._sql import insert_for


@dataclass(frozen=True, slots=True)
class RecordResult:
    duplicate: bool
    applied: bool = False  # the alert changed the CH's active version (or its unknown marker)
    lookup_needed: bool = False  # N999 for N64: version must be fetched from the DSP


@dataclass(frozen=True, slots=True)
class HubEvent:
    response_id: str
    alert_code: str
    firmware_version: str | None
    version_source: str
    alert_time: datetime
    received_at: datetime
    applied: bool


@dataclass(frozen=True, slots=True)
class HubView:
    device_id: DeviceId
    active_version: str | None
    changed_at: datetime
    lookup_pending: bool
    lookup_error: str | None
    history: tuple[HubEvent, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": str(self.device_id),
            "active_firmware_version": self.active_version,
            "changed_at": self.changed_at.isoformat(),
            "version_lookup_pending": self.lookup_pending,
            "version_lookup_error": self.lookup_error,
            "history": [
                {
                    "response_id": e.response_id,
                    "alert_code": e.alert_code,
                    "firmware_version": e.firmware_version,
                    "version_source": e.version_source,
                    "alert_time": e.alert_time.isoformat(),
                    "received_at": e.received_at.isoformat(),
                    "applied": e.applied,
                }
                for e in self.history
            ],
        }


def record_alert(
    conn: Connection, facts: AlertFacts, document: bytes, signer: str, now: datetime
) -> RecordResult:
    """Store one verified alert; a ResponseID seen before changes nothing."""
    inserted = conn.execute(
        insert_for(conn, bo_alerts)
        .on_conflict_do_nothing(index_elements=["response_id"])
        .values(
            response_id=facts.response_id,
            alert_code=facts.alert_code,
            device_id=facts.device_id.hex if facts.device_id else None,
            firmware_version=facts.firmware_version.hex if facts.firmware_version else None,
            mismatch_alert_code=facts.mismatch_alert_code,
            schema_version=facts.schema_version,
            alert_time=facts.alert_time,
            received_at=now,
            signer=signer,
            document=document,
        )
    ).rowcount
    if not inserted:
        return RecordResult(duplicate=True)
    if not facts.is_firmware_activation or facts.device_id is None:
        return RecordResult(duplicate=False)
    version = facts.firmware_version.hex if facts.firmware_version else None
    device = facts.device_id.hex
    hub = conn.execute(sa.select(bo_hubs).where(bo_hubs.c.device_id == device)).first()
    applied = hub is None or aware(hub.changed_at) <= facts.alert_time
    conn.execute(
        sa.insert(bo_firmware_events).values(
            device_id=device,
            response_id=facts.response_id,
            alert_code=facts.alert_code,
            firmware_version=version,
            version_source="alert" if version else "unknown",
            alert_time=facts.alert_time,
            received_at=now,
            applied=applied,
        )
    )
    if applied:
        values = {
            "active_version": version,
            "changed_at": facts.alert_time,
            "updated_at": now,
            "lookup_pending": version is None,
            "lookup_attempts": 0,
            "lookup_error": None,
        }
        if hub is None:
            conn.execute(sa.insert(bo_hubs).values(device_id=device, **values))
        else:
            conn.execute(sa.update(bo_hubs).where(bo_hubs.c.device_id == device).values(**values))
    return RecordResult(duplicate=False, applied=applied, lookup_needed=applied and version is None)


def record_fetched_version(
    conn: Connection, device_id: DeviceId, version: FirmwareVersion, now: datetime
) -> None:
    """The DSP's inventory told us the version an N999 could not carry."""
    device = device_id.hex
    conn.execute(
        sa.update(bo_hubs)
        .where(bo_hubs.c.device_id == device, bo_hubs.c.lookup_pending.is_(True))
        .values(active_version=version.hex, lookup_pending=False, lookup_error=None, updated_at=now)
    )
    conn.execute(
        sa.update(bo_firmware_events)
        .where(
            bo_firmware_events.c.device_id == device,
            bo_firmware_events.c.firmware_version.is_(None),
            bo_firmware_events.c.applied.is_(True),
        )
        .values(firmware_version=version.hex, version_source="inventory")
    )


def record_lookup_failure(conn: Connection, device_id: DeviceId, error: str) -> None:
    conn.execute(
        sa.update(bo_hubs)
        .where(bo_hubs.c.device_id == device_id.hex)
        .values(lookup_attempts=bo_hubs.c.lookup_attempts + 1, lookup_error=error[:500])
    )


def pending_lookups(conn: Connection, limit: int = 100) -> list[DeviceId]:
    rows = conn.execute(
        sa.select(bo_hubs.c.device_id).where(bo_hubs.c.lookup_pending.is_(True)).limit(limit)
    )
    return [DeviceId.parse(row.device_id) for row in rows]


def record_rejection(
    conn: Connection, *, status_code: int, reason: str, remote: str | None, size: int, now: datetime
) -> None:
    conn.execute(
        sa.insert(bo_rejections).values(
            at=now, status_code=status_code, reason=reason[:1000], remote=remote, size=size
        )
    )


def hub_view(conn: Connection, device_id: DeviceId) -> HubView | None:
    hub = conn.execute(sa.select(bo_hubs).where(bo_hubs.c.device_id == device_id.hex)).first()
    if hub is None:
        return None
    events = conn.execute(
        sa.select(bo_firmware_events)
        .where(bo_firmware_events.c.device_id == device_id.hex)
        .order_by(bo_firmware_events.c.alert_time, bo_firmware_events.c.id)
    )
    return HubView(
        device_id=device_id,
        active_version=hub.active_version,
        changed_at=aware(hub.changed_at),
        lookup_pending=hub.lookup_pending,
        lookup_error=hub.lookup_error,
        history=tuple(
            HubEvent(
                response_id=e.response_id,
                alert_code=e.alert_code,
                firmware_version=e.firmware_version,
                version_source=e.version_source,
                alert_time=aware(e.alert_time),
                received_at=aware(e.received_at),
                applied=e.applied,
            )
            for e in events
        ),
    )


def alert_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(bo_alerts.c.alert_code, sa.func.count()).group_by(bo_alerts.c.alert_code)
    )
    return {code: n for code, n in rows}


def firmware_distribution(conn: Connection) -> dict[str | None, int]:
    rows = conn.execute(
        sa.select(bo_hubs.c.active_version, sa.func.count()).group_by(bo_hubs.c.active_version)
    )
    return {version: n for version, n in rows}
