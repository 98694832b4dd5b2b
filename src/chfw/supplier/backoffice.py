"""The supplier's back office: what was received, per CH and per alert, and the N999 follow-up.

Recording lives in :mod:`chfw.supplier.recording` (re-exported here:
``record_alert``, ``record_rejection``, ``RecordResult``); this module reads
the result back -- a CH's active firmware and history, the alerts of every
code, the rejections -- and notes what the DSP's inventory said for N999s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.shared.db.sql import from_db as aware
from chfw.shared.db.sql import to_db
from chfw.supplier.recording import RecordResult, record_alert, record_rejection
from chfw.supplier.schema import bo_alerts, bo_firmware_events, bo_hubs, bo_rejections

__all__ = [
    "HubEvent",
    "HubView",
    "ReceivedAlert",
    "RecordResult",
    "Rejection",
    "alert_counts",
    "alert_document",
    "firmware_distribution",
    "hub_view",
    "list_alerts",
    "list_rejections",
    "n999_fetched",
    "pending_lookups",
    "record_alert",
    "record_fetched_version",
    "record_lookup_failure",
    "record_rejection",
]


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One firmware alert received for a CH."""

    response_id: str
    alert_code: str
    firmware_version: str | None
    version_source: str  # alert | inventory | unknown | feed (chfw receiver sync)
    alert_time: datetime
    received_at: datetime
    applied: bool


@dataclass(frozen=True, slots=True)
class HubView:
    """A CH as the back office knows it: active firmware, since when, and every alert."""

    device_id: DeviceId
    active_version: str | None
    changed_at: datetime
    latest_alert_at: datetime
    lookup_pending: bool
    lookup_error: str | None
    history: tuple[HubEvent, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": str(self.device_id),
            "active_firmware_version": self.active_version,
            "changed_at": self.changed_at.isoformat(),
            "latest_alert_at": self.latest_alert_at.isoformat(),
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


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    """One stored alert (any code), without its document."""

    response_id: str
    alert_code: str
    device_id: str | None  # DUIS form
    firmware_version: str | None
    mismatch_alert_code: str | None
    schema_version: str
    alert_time: datetime
    received_at: datetime
    signer: str
    duplicates: int
    # The version an N999 could not carry, once fetched from the DSP.
    fetched_version: str | None = None
    # Where known_version comes from: 'alert' (an N64 carries it), 'inventory' or 'feed'
    # (fetched from the DSP for an N999), 'unknown' (not fetched yet); None: no firmware alert.
    version_source: str | None = None

    @property
    def known_version(self) -> str | None:
        """The version the alert carried, else the one fetched for it."""
        return self.firmware_version or self.fetched_version

    def to_json(self) -> dict[str, Any]:
        """``firmware_version``: as carried, or for an N999 as fetched (``version_source``)."""
        return {
            "response_id": self.response_id,
            "alert_code": self.alert_code,
            "device_id": self.device_id,
            "firmware_version": self.known_version,
            "version_source": self.version_source,
            "mismatch_alert_code": self.mismatch_alert_code,
            "schema_version": self.schema_version,
            "alert_time": self.alert_time.isoformat(),
            "received_at": self.received_at.isoformat(),
            "signer": self.signer,
            "duplicates": self.duplicates,
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused POST."""

    id: int
    at: datetime
    status_code: int
    reason: str
    remote: str | None
    size: int
    digest: str | None
    response_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "status_code": self.status_code,
            "reason": self.reason,
            "remote": self.remote,
            "size": self.size,
            "digest": self.digest,
            "response_id": self.response_id,
        }


def record_fetched_version(
    conn: Connection, device_id: DeviceId, version: FirmwareVersion, now: datetime
) -> None:
    """The DSP's inventory told us the version an N999 could not carry."""
    device = device_id.hex
    conn.execute(
        sa.update(bo_hubs)
        .where(bo_hubs.c.device_id == device, bo_hubs.c.lookup_pending.is_(True))
        .values(
            active_version=version.hex,
            lookup_pending=False,
            lookup_error=None,
            updated_at=to_db(now),
        )
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
        latest_alert_at=aware(hub.latest_alert_at),
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


def _alerts() -> sa.Select[Any]:
    """Stored alerts without their documents, each with its firmware event's version and
    source: an N999's version is the one fetched for it, when it was."""
    events = bo_firmware_events
    return sa.select(
        *(c for c in bo_alerts.c if c.name != "document"),
        events.c.firmware_version.label("event_version"),
        events.c.version_source,
    ).select_from(bo_alerts.outerjoin(events, events.c.response_id == bo_alerts.c.response_id))


def list_alerts(
    conn: Connection, *, alert_code: str | None = None, limit: int = 50
) -> list[ReceivedAlert]:
    """The most recently received alerts first, of one code or all (N999s with the version
    fetched for them, if it was)."""
    query = _alerts()
    if alert_code is not None:
        query = query.where(bo_alerts.c.alert_code == alert_code)
    rows = conn.execute(
        query.order_by(bo_alerts.c.received_at.desc(), bo_alerts.c.response_id).limit(limit)
    )
    return [_received(row) for row in rows]


def received_alert(conn: Connection, response_id: str) -> ReceivedAlert | None:
    """The alert recorded under ``response_id`` (one at most: it is the key), or None."""
    row = conn.execute(_alerts().where(bo_alerts.c.response_id == response_id)).one_or_none()
    return None if row is None else _received(row)


def _received(row: sa.Row[Any]) -> ReceivedAlert:
    return ReceivedAlert(
        response_id=row.response_id,
        alert_code=row.alert_code,
        device_id=str(DeviceId.parse(row.device_id)) if row.device_id else None,
        firmware_version=row.firmware_version,
        fetched_version=None if row.firmware_version else row.event_version,
        version_source=row.version_source,
        mismatch_alert_code=row.mismatch_alert_code,
        schema_version=row.schema_version,
        alert_time=aware(row.alert_time),
        received_at=aware(row.received_at),
        signer=row.signer,
        duplicates=row.duplicates,
    )


def alert_document(conn: Connection, response_id: str) -> bytes | None:
    """The signed document exactly as it was received."""
    document: bytes | None = conn.execute(
        sa.select(bo_alerts.c.document).where(bo_alerts.c.response_id == response_id)
    ).scalar_one_or_none()
    return document


def list_rejections(conn: Connection, *, limit: int = 50) -> list[Rejection]:
    """The most recent rejections first."""
    rows = conn.execute(sa.select(bo_rejections).order_by(bo_rejections.c.id.desc()).limit(limit))
    return [
        Rejection(
            id=row.id,
            at=aware(row.at),
            status_code=row.status_code,
            reason=row.reason,
            remote=row.remote,
            size=row.size,
            digest=row.digest,
            response_id=row.response_id,
        )
        for row in rows
    ]


def alert_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(bo_alerts.c.alert_code, sa.func.count()).group_by(bo_alerts.c.alert_code)
    )
    return {code: n for code, n in rows}


def n999_fetched(conn: Connection) -> int:
    """N999s whose firmware version has been fetched from the DSP (the others still wait)."""
    query = (
        sa.select(sa.func.count())
        .select_from(bo_firmware_events)
        .where(
            bo_firmware_events.c.alert_code == "N999",
            bo_firmware_events.c.firmware_version.is_not(None),
        )
    )
    return int(conn.execute(query).scalar_one())


def firmware_distribution(conn: Connection) -> dict[str | None, int]:
    rows = conn.execute(
        sa.select(bo_hubs.c.active_version, sa.func.count()).group_by(bo_hubs.c.active_version)
    )
    return {version: n for version, n in rows}
