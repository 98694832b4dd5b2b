"""The Smart Metering Inventory's firmware view: each CH's active version and its full history.

:func:`record_outcome` is also the idempotency check: the history's unique key
(device_id, originator_counter, event) is the processed-outcome key, and the
insert either claims it or finds it taken -- atomically, in the database, so
two intake processes handling the same redelivery cannot both proceed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import (
    ActivationOutcome,
    ActivationResult,
    Decision,
    DeviceId,
    FirmwareVersion,
    OutcomeEvent,
    OutcomeKey,
    OutcomeSource,
    Report,
)
from chfw.dsp.store.schema import firmware_history, hubs
from chfw.exceptions import InvalidValueError, UnknownDeviceError
from chfw.shared.db.bulk import ArrayRows, driver_time, execute_many, insert_rows_returning
from chfw.shared.db.sql import among, chunked, from_db, from_db_opt, insert_for, to_db, to_db_opt
from chfw.shared.db.types import UTC_TIME

NOTE_MAX = 500
E = TypeVar("E", bound=enum.Enum)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One outcome a CSP reported for a CH, and what chfw made of it."""

    id: int
    device_id: DeviceId
    originator_counter: int
    event: OutcomeEvent
    source: OutcomeSource
    result: ActivationResult
    decision: Decision
    reported_version: FirmwareVersion | None
    version_before: FirmwareVersion | None
    version_after: FirmwareVersion | None
    occurred_at: datetime | None
    recorded_at: datetime
    csp: str | None
    alerts_created: int
    note: str | None


def set_active_firmware(
    conn: Connection, device_id: DeviceId, version: FirmwareVersion, at: datetime
) -> None:
    """Record ``version`` as the CH's active firmware since ``at``."""
    result = conn.execute(
        sa.update(hubs)
        .where(hubs.c.device_id == device_id.hex)
        .values(active_firmware=version.hex, firmware_changed_at=to_db(at))
    )
    if result.rowcount == 0:
        raise UnknownDeviceError(f"Communications Hub {device_id} is not in the estate")


def _value(kind: type[E], value: E | str, name: str) -> str:
    """An enum's value, accepting the enum or its value text (checked either way)."""
    try:
        return str(kind(value).value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise InvalidValueError(f"{name} {value!r} is not one of {allowed}") from None


def _version(value: FirmwareVersion | str | None) -> str | None:
    if value is None:
        return None
    return (value if isinstance(value, FirmwareVersion) else FirmwareVersion.parse(value)).hex


def record_outcome(
    conn: Connection,
    *,
    key: OutcomeKey,
    source: OutcomeSource | str,
    result: ActivationResult | str,
    decision: Decision | str,
    reported_version: FirmwareVersion | str | None,
    version_before: FirmwareVersion | str | None,
    version_after: FirmwareVersion | str | None,
    occurred_at: datetime | None,
    recorded_at: datetime,
    csp: str | None,
    note: str | None = None,
    sender: str = "",
) -> int | None:
    """Add the outcome to the CH's history; None when this outcome was already processed.

    ``sender`` is the hex of the command's sender (part of the outcome's identity).

    Enums may be given as their value text and versions as hex, as they are
    stored. The returned id names the history row (outbox rows refer to it).
    """
    stmt = (
        insert_for(conn, firmware_history)
        .values(
            device_id=key.device_id.hex,
            sender=sender,
            originator_counter=str(key.originator_counter),
            event=key.event.value,
            source=_value(OutcomeSource, source, "source"),
            result=_value(ActivationResult, result, "result"),
            decision=_value(Decision, decision, "decision"),
            reported_version=_version(reported_version),
            version_before=_version(version_before),
            version_after=_version(version_after),
            occurred_at=to_db_opt(occurred_at),
            recorded_at=to_db(recorded_at),
            csp=csp,
            note=_note(note),
        )
        .on_conflict_do_nothing(index_elements=list(_HISTORY_KEY))
        .returning(firmware_history.c.id)
    )
    new_id = conn.execute(stmt).scalar_one_or_none()
    return None if new_id is None else int(new_id)


def _note(note: str | None) -> str | None:
    if note is None or len(note) <= NOTE_MAX:
        return note
    return note[: NOTE_MAX - 1] + "…"


def set_alerts_created(
    conn: Connection, history_id: int, count: int, note: str | None = None
) -> None:
    """Say how many alerts the outcome produced (and, if given, replace its note)."""
    values: dict[str, Any] = {"alerts_created": count}
    if note is not None:
        values["note"] = _note(note)
    conn.execute(
        sa.update(firmware_history).where(firmware_history.c.id == history_id).values(**values)
    )


def is_processed(conn: Connection, key: OutcomeKey) -> bool:
    """Whether an outcome with this key is already in the history (a read, not a claim)."""
    query = sa.select(firmware_history.c.id).where(
        firmware_history.c.device_id == key.device_id.hex,
        firmware_history.c.originator_counter == str(key.originator_counter),
        firmware_history.c.event == key.event.value,
    )
    return conn.execute(query).first() is not None


def _optional_version(text: str | None) -> FirmwareVersion | None:
    return None if text is None else FirmwareVersion.parse(text)


def _entry(row: Any) -> HistoryEntry:
    return HistoryEntry(
        id=int(row.id),
        device_id=DeviceId.parse(row.device_id),
        originator_counter=int(row.originator_counter),
        event=OutcomeEvent(row.event),
        source=OutcomeSource(row.source),
        result=ActivationResult(row.result),
        decision=Decision(row.decision),
        reported_version=_optional_version(row.reported_version),
        version_before=_optional_version(row.version_before),
        version_after=_optional_version(row.version_after),
        occurred_at=from_db_opt(row.occurred_at),
        recorded_at=from_db(row.recorded_at),
        csp=row.csp,
        alerts_created=int(row.alerts_created),
        note=row.note,
    )


def history_for(conn: Connection, device_id: DeviceId) -> list[HistoryEntry]:
    """Every outcome reported for the CH, in the order chfw received them."""
    rows = conn.execute(
        sa.select(firmware_history)
        .where(firmware_history.c.device_id == device_id.hex)
        .order_by(firmware_history.c.id)
    )
    return [_entry(row) for row in rows]


def outcome_counts(conn: Connection) -> dict[str, int]:
    """Outcomes recorded per result (ActivationResult values: success, accepted, ...)."""
    rows = conn.execute(
        sa.select(firmware_history.c.result, sa.func.count()).group_by(firmware_history.c.result)
    )
    return {str(result): int(count) for result, count in rows}


@dataclass(frozen=True, slots=True)
class NewOutcome:
    """One history row to write in bulk (see :func:`record_outcomes`)."""

    key: OutcomeKey
    source: str
    result: str
    decision: str
    reported_version: str | None
    version_before: str | None
    version_after: str | None
    occurred_at: datetime | None
    alerts_created: int = 0
    note: str | None = None
    sender: str = ""  # hex of the command's sender (the response's recipient system title)
    content_digest: str | None = None  # processing.content_digest of the outcome


OutcomeIdentity = tuple[str, str, str, str]
"""(device hex, sender hex, counter text, event): one outcome, whoever posts it how often."""


def identity_of(outcome: ActivationOutcome) -> OutcomeIdentity:
    """An outcome's identity as the history and the parked outcomes store it."""
    key = outcome.key
    return (key.device_id.hex, outcome.recipient.hex, str(key.originator_counter), key.event.value)


def processed_outcomes(
    conn: Connection, device_ids: Iterable[DeviceId]
) -> dict[OutcomeIdentity, str | None]:
    """The identity of every outcome already recorded for these CHs, with its content digest.

    Rows recorded before the sender was kept (migration 0010) have sender ''
    and no digest.
    """
    found: dict[OutcomeIdentity, str | None] = {}
    for chunk in chunked(sorted({d.hex for d in device_ids}), 900):
        rows = conn.execute(
            sa.select(
                firmware_history.c.device_id,
                firmware_history.c.sender,
                firmware_history.c.originator_counter,
                firmware_history.c.event,
                firmware_history.c.content_digest,
            ).where(among(conn, firmware_history.c.device_id, chunk))
        )
        for device, sender, counter, event, digest in rows:
            found[(device, sender, counter, event)] = digest
    return found


def record_outcomes(
    conn: Connection, outcomes: Sequence[NewOutcome], *, recorded_at: datetime, csp: str | None
) -> list[int]:
    """Insert many history rows (none already processed); returns their ids in order.

    Callers check :func:`processed_keys` first under the hubs' locks; the
    unique key still guards against anything that slipped past (the
    transaction then fails rather than processing an outcome twice).
    """
    if not outcomes:
        return []
    at = driver_time(conn, firmware_history.c.recorded_at, recorded_at)
    occurred = firmware_history.c.occurred_at
    rows = [
        (
            o.key.device_id.hex,
            o.sender,
            str(o.key.originator_counter),
            o.key.event.value,
            o.source,
            o.result,
            o.decision,
            o.reported_version,
            o.version_before,
            o.version_after,
            driver_time(conn, occurred, o.occurred_at),
            at,
            csp,
            o.alerts_created,
            _note(o.note),
            o.content_digest,
        )
        for o in outcomes
    ]
    returned = insert_rows_returning(
        conn, firmware_history, _HISTORY_COLUMNS, rows, ("id", *_HISTORY_KEY)
    )
    ids = {tuple(row[1:]): int(row[0]) for row in returned}
    return [ids[row[:4]] for row in rows]


_HISTORY_KEY = ("device_id", "sender", "originator_counter", "event")
_HISTORY_COLUMNS = (
    *_HISTORY_KEY,
    "source",
    "result",
    "decision",
    "reported_version",
    "version_before",
    "version_after",
    "occurred_at",
    "recorded_at",
    "csp",
    "alerts_created",
    "note",
    "content_digest",
)


def set_active_firmware_many(
    conn: Connection, changes: Iterable[tuple[DeviceId, FirmwareVersion, datetime]]
) -> None:
    """Set several CHs' active versions in one statement (SQLite: one executemany);
    a CH named twice ends with its last change."""
    column = hubs.c.firmware_changed_at
    last = {
        device.hex: (version.hex, driver_time(conn, column, at)) for device, version, at in changes
    }
    if conn.dialect.name == "postgresql":
        rows = [(device, version, at) for device, (version, at) in last.items()]
        if rows:
            conn.execute(_SET_ACTIVE_FIRMWARE_SET, _CHANGES.params(rows))
        return
    execute_many(
        conn,
        _SET_ACTIVE_FIRMWARE,
        [{"b_device": d, "b_version": v, "b_at": at} for d, (v, at) in last.items()],
    )


_SET_ACTIVE_FIRMWARE = (
    sa.update(hubs)
    .where(hubs.c.device_id == sa.bindparam("b_device"))
    .values(active_firmware=sa.bindparam("b_version"), firmware_changed_at=sa.bindparam("b_at"))
)
_CHANGES = ArrayRows("changes", {"device_id": sa.String(), "version": sa.String(), "at": UTC_TIME})
_SET_ACTIVE_FIRMWARE_SET = (
    sa.update(hubs)
    .where(hubs.c.device_id == _CHANGES.c.device_id)
    .values(active_firmware=_CHANGES.c.version, firmware_changed_at=_CHANGES.c.at)
)


@dataclass(frozen=True, slots=True)
class HubState:
    """What one batch leaves a CH at: its active firmware and its newest report."""

    device_id: DeviceId
    active_firmware: FirmwareVersion | None
    changed_at: datetime | None
    latest: Report


def set_hub_states(conn: Connection, states: Iterable[HubState]) -> None:
    """Write CHs' active firmware and newest report in one statement (SQLite: one
    executemany); a CH named twice ends with its last state."""
    last: dict[str, tuple[Any, ...]] = {}
    for state in states:
        version = state.active_firmware.hex if state.active_firmware else None
        latest = state.latest
        last[state.device_id.hex] = (
            version,
            driver_time(conn, hubs.c.firmware_changed_at, state.changed_at)
            if state.changed_at
            else None,
            driver_time(conn, hubs.c.latest_report_at, latest.at) if latest.at else None,
            latest.sender.hex,
            str(latest.counter),
        )
    if not last:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(_SET_STATES_SET, _STATES.params([(d, *v) for d, v in last.items()]))
        return
    execute_many(
        conn,
        _SET_STATES,
        [dict(zip(_STATE_PARAMS, (d, *v), strict=True)) for d, v in last.items()],
    )


_STATE_PARAMS = ("b_device", "b_version", "b_at", "b_report_at", "b_sender", "b_counter")
_SET_STATES = (
    sa.update(hubs)
    .where(hubs.c.device_id == sa.bindparam("b_device"))
    .values(
        active_firmware=sa.bindparam("b_version"),
        firmware_changed_at=sa.bindparam("b_at"),
        latest_report_at=sa.bindparam("b_report_at"),
        latest_report_sender=sa.bindparam("b_sender"),
        latest_report_counter=sa.bindparam("b_counter"),
    )
)
_STATES = ArrayRows(
    "states",
    {
        "device_id": sa.String(),
        "version": sa.String(),
        "at": UTC_TIME,
        "report_at": UTC_TIME,
        "sender": sa.String(),
        "counter": sa.String(),
    },
)
_SET_STATES_SET = (
    sa.update(hubs)
    .where(hubs.c.device_id == _STATES.c.device_id)
    .values(
        active_firmware=_STATES.c.version,
        firmware_changed_at=_STATES.c.at,
        latest_report_at=_STATES.c.report_at,
        latest_report_sender=_STATES.c.sender,
        latest_report_counter=_STATES.c.counter,
    )
)
