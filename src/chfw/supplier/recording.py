"""Record verified alerts in the back office, a batch at a time.

Per alert: the raw document under its ResponseID (a ResponseID seen before
only counts a replay); for a firmware alert (N64, or N999 for N64), one
history event and, unless a newer alert already decided it, the CH's active
version. Alerts for one CH may arrive out of order (a replayed dead letter,
two DSP workers), so "newer" is by alert time (ResponseDateTime), then by
ResponseID counter (:attr:`AlertFacts.order`), never by arrival: a replay or a
late copy can never move a CH back, and any arrival order of one CH's alerts
leaves it in the same state. An alert that orders equal to the one that set
the CH (no counter in either ResponseID, same time) leaves it as it is.

A batch costs a handful of statements whatever its size (one read of the
ResponseIDs and hubs concerned, then one multi-row write per table), which is
what lets the receiver's group commit scale. The hubs are folded in Python in
arrival order; the hub upsert keeps a guard (``(latest_alert_at, latest_counter) <``) so that a
concurrent writer (PostgreSQL, several receiver processes) can never move a
hub backwards. On SQLite every write transaction holds the database lock from
its start (``BEGIN IMMEDIATE``), so the fold is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import UpdateBase

from chfw.shared.db.bulk import (
    driver_time,
    driver_value,
    execute_many,
    lookup,
    result_processor,
)
from chfw.shared.db.sql import IN_LIST_MAX, chunked, from_db, insert_for, to_db
from chfw.supplier.facts import AlertFacts
from chfw.supplier.schema import bo_alerts, bo_firmware_events, bo_hubs, bo_rejections

_SIGNER_MAX = 500
_REASON_MAX = 1000
_REMOTE_MAX = 100


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What recording one verified alert did."""

    duplicate: bool  # its ResponseID was recorded before: nothing changed
    applied: bool = False  # it set the CH's active version (or its "unknown" marker)
    lookup_needed: bool = False  # N999 for N64: version must be fetched from the DSP
    same_content: bool = True  # for a duplicate: the signed content matches the first copy


@dataclass(frozen=True, slots=True)
class NewAlert:
    """A verified alert to record."""

    facts: AlertFacts
    document: bytes  # the body exactly as received
    signer: str  # subject of the trusted certificate
    digest: str  # hex SHA-256 of the signed content
    received_at: datetime


@dataclass(frozen=True, slots=True)
class NewRejection:
    """A refused POST to note: why, from where, how big; never its content."""

    at: datetime
    status_code: int
    reason: str
    remote: str | None
    size: int
    digest: str | None = None
    response_id: str | None = None  # only once the signature verified


def record_alert(
    conn: Connection,
    facts: AlertFacts,
    *,
    document: bytes,
    signer: str,
    digest: str,
    now: datetime,
) -> RecordResult:
    """Store one verified alert; a ResponseID seen before changes nothing but a replay count."""
    (result,) = record_alerts(conn, [NewAlert(facts, document, signer, digest, now)])
    return result


@dataclass(frozen=True, slots=True)
class _Hub:
    active_version: str | None
    changed_at: datetime
    latest_alert_at: datetime
    latest_counter: str  # padded_counter() of the alert that set it

    def older_than(self, alert_time: datetime, counter: str) -> bool:
        """Whether an alert at ``alert_time`` with ``counter`` is newer than this state."""
        return (self.latest_alert_at, self.latest_counter) < (alert_time, counter)


def padded_counter(counter: int | None) -> str:
    """A ResponseID counter as stored in ``bo_hubs.latest_counter``: 20 digits, '' if none.

    Counters reach 2^64-1 (beyond BIGINT); equal-length digit strings sort as
    their numbers in SQL and in Python alike, and '' sorts before them all.
    """
    return "" if counter is None else str(counter).zfill(20)


def record_alerts(conn: Connection, alerts: Sequence[NewAlert]) -> list[RecordResult]:
    """Store verified alerts, in arrival order, in the caller's transaction; one result each."""
    if not alerts:
        return []
    statements = _statements(conn)
    ids = list(dict.fromkeys(a.facts.response_id for a in alerts))
    known: dict[str, str] = {
        response_id: digest
        for chunk in chunked(ids, IN_LIST_MAX)
        for response_id, digest in lookup(
            conn, bo_alerts, ("response_id", "digest"), "response_id", chunk
        )
    }
    times = _Times(conn)
    results: list[RecordResult] = []
    replays: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    firmware: list[tuple[int, NewAlert]] = []
    for alert in alerts:
        response_id = alert.facts.response_id
        first_digest = known.get(response_id)
        if first_digest is not None:
            replays[response_id] = replays.get(response_id, 0) + 1
            results.append(RecordResult(duplicate=True, same_content=first_digest == alert.digest))
            continue
        known[response_id] = alert.digest
        rows.append(_alert_row(alert, times))
        if alert.facts.is_firmware_activation and alert.facts.device_id is not None:
            firmware.append((len(results), alert))
        results.append(RecordResult(duplicate=False))
    execute_many(conn, statements.insert_alerts, rows)
    if replays:
        execute_many(
            conn, statements.count_replays, [{"rid": r, "n": n} for r, n in replays.items()]
        )
    if firmware:
        reports = [_report_of(alert) for _, alert in firmware]
        flags = _file_firmware(conn, statements, reports, times)
        for (index, _), report, applied in zip(firmware, reports, flags, strict=True):
            results[index] = RecordResult(
                duplicate=False, applied=applied, lookup_needed=applied and report.version is None
            )
    return results


class _Times:
    """Times as the driver stores them (every time column here is ``UTC_TIME``), each
    distinct one converted once a batch: an alert's time goes into three rows, and the
    conversion (SQLite's is text) cost more than the rest of building the rows."""

    __slots__ = ("_conn", "_seen")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._seen: dict[datetime, Any] = {}

    def __call__(self, moment: datetime) -> Any:
        found = self._seen.get(moment)
        if found is None:
            found = self._seen[moment] = driver_time(self._conn, bo_alerts.c.alert_time, moment)
        return found


def _alert_row(alert: NewAlert, times: _Times) -> dict[str, Any]:
    facts = alert.facts
    return {
        "b_response_id": facts.response_id,
        "b_alert_code": facts.alert_code,
        "b_device_id": facts.device_id.hex if facts.device_id else None,
        "b_firmware_version": facts.firmware_version,
        "b_mismatch_alert_code": facts.mismatch_alert_code,
        "b_schema_version": facts.schema_version,
        "b_alert_time": times(facts.alert_time),
        "b_received_at": times(alert.received_at),
        "b_signer": alert.signer[:_SIGNER_MAX],
        "b_digest": alert.digest,
        "b_duplicates": 0,
        "b_document": alert.document,
    }


@dataclass(frozen=True, slots=True)
class VersionReport:
    """One report of a CH's active firmware to file: from an alert, or from the DSP's
    catch-up feed (:mod:`chfw.supplier.feed_sync`). Both are placed by the same order."""

    device: str  # hex
    version: str | None  # None: an N999, version to be looked up
    at: datetime  # the alert's time; for a feed entry, when the version became active
    counter: str  # padded_counter() of the ResponseID; '' for none (a feed entry)
    response_id: str  # an alert's ResponseID; a feed entry's own stable key
    alert_code: str
    source: str  # version_source: alert | unknown | feed
    received_at: datetime


def file_versions(conn: Connection, reports: Sequence[VersionReport]) -> list[bool]:
    """History events for ``reports`` (in the caller's transaction, in order) and the hubs
    they leave behind; whether each one set its CH. Never moves a CH back."""
    return _file_firmware(conn, _statements(conn), reports, _Times(conn))


def _report_of(alert: NewAlert) -> VersionReport:
    facts = alert.facts
    assert facts.device_id is not None
    version = facts.firmware_version
    return VersionReport(
        device=facts.device_id.hex,
        version=version,
        at=facts.alert_time,
        counter=padded_counter(facts.counter),
        response_id=facts.response_id,
        alert_code=facts.alert_code,
        source="alert" if version else "unknown",
        received_at=alert.received_at,
    )


def _file_firmware(
    conn: Connection,
    statements: _Statements,
    reports: Sequence[VersionReport],
    times: _Times,
) -> list[bool]:
    """History events for the reports, and the hubs they leave behind; applied flags."""
    devices = list(dict.fromkeys(r.device for r in reports))
    as_time = result_processor(conn.dialect, bo_hubs.c.changed_at.type) or (lambda v: v)
    hubs = {
        device_id: _Hub(
            active_version, from_db(as_time(changed_at)), from_db(as_time(latest)), counter
        )
        for chunk in chunked(devices, IN_LIST_MAX)
        for device_id, active_version, changed_at, latest, counter in lookup(
            conn, bo_hubs, _HUB_READ, "device_id", chunk, lock=True
        )
    }
    changed: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    flags: list[bool] = []
    # Booleans as the driver stores them (both boolean columns share the type).
    pending, not_pending = (driver_value(conn, bo_hubs.c.lookup_pending, v) for v in (True, False))
    for report in reports:
        device, version, counter = report.device, report.version, report.counter
        alert_time = to_db(report.at)
        received_at = times(report.received_at)  # the event's, and the hub's updated_at
        hub = hubs.get(device)
        applied = hub is None or hub.older_than(alert_time, counter)
        if applied:
            # A known version reported again keeps the time it first became active.
            same = hub is not None and version is not None and hub.active_version == version
            changed_at = hub.changed_at if same and hub else alert_time
            hubs[device] = _Hub(version, changed_at, alert_time, counter)
            changed[device] = {
                "b_device_id": device,
                "b_active_version": version,
                "b_changed_at": times(changed_at),
                "b_latest_alert_at": times(alert_time),
                "b_latest_response_id": report.response_id,
                "b_latest_counter": counter,
                "b_updated_at": received_at,
                "b_lookup_pending": pending if version is None else not_pending,
                "b_lookup_attempts": 0,
                "b_lookup_error": None,
            }
        flags.append(applied)
        events.append(
            {
                "b_device_id": device,
                "b_response_id": report.response_id,
                "b_alert_code": report.alert_code,
                "b_firmware_version": version,
                "b_version_source": report.source,
                "b_alert_time": times(alert_time),
                "b_received_at": received_at,
                "b_applied": pending if applied else not_pending,
            }
        )
    execute_many(conn, statements.upsert_hubs, list(changed.values()))
    execute_many(conn, statements.insert_events, events)
    return flags


def record_rejections(conn: Connection, rejections: Sequence[NewRejection]) -> None:
    """Note refused POSTs."""
    if not rejections:
        return
    conn.execute(
        sa.insert(bo_rejections),
        [
            {
                "at": to_db(r.at),
                "status_code": r.status_code,
                "reason": r.reason[:_REASON_MAX],
                "remote": r.remote[:_REMOTE_MAX] if r.remote else None,
                "size": r.size,
                "digest": r.digest,
                "response_id": r.response_id,
            }
            for r in rejections
        ],
    )


def record_rejection(
    conn: Connection,
    *,
    status_code: int,
    reason: str,
    remote: str | None,
    size: int,
    now: datetime,
    digest: str | None = None,
    response_id: str | None = None,
) -> None:
    """Note one refused POST."""
    record_rejections(
        conn, [NewRejection(now, status_code, reason, remote, size, digest, response_id)]
    )


@dataclass(frozen=True, slots=True)
class _Statements:
    """The writes of a batch, built once per dialect: values come as parameters, so each
    is compiled once and reused (building them per alert cost more than verifying the
    alert). Every statement of a batch, the two lookups included, is compiled driver SQL
    run by :func:`chfw.shared.db.bulk.run_sql` (no per-row type processing): under load
    the receiver commits the few alerts of one event-loop turn together, and
    SQLAlchemy's statement building and type processing were then most of the cost of
    recording them."""

    insert_alerts: UpdateBase
    count_replays: UpdateBase
    upsert_hubs: UpdateBase
    insert_events: UpdateBase


_BY_DIALECT: dict[str, _Statements] = {}


def _statements(conn: Connection) -> _Statements:
    found = _BY_DIALECT.get(conn.dialect.name)
    if found is None:
        found = _BY_DIALECT[conn.dialect.name] = _build_statements(conn)
    return found


def _build_statements(conn: Connection) -> _Statements:
    hub = _insert_values(conn, bo_hubs, _HUB_COLUMNS)
    new = hub.excluded
    upsert_hubs = hub.on_conflict_do_update(
        index_elements=["device_id"],
        set_={name: new[name] for name in _HUB_COLUMNS if name != "device_id"},
        # Never backwards, even if another process recorded a newer alert meanwhile.
        where=sa.tuple_(bo_hubs.c.latest_alert_at, bo_hubs.c.latest_counter)
        < sa.tuple_(new.latest_alert_at, new.latest_counter),
    )
    return _Statements(
        insert_alerts=_insert_values(conn, bo_alerts, _ALERT_COLUMNS).on_conflict_do_nothing(
            index_elements=["response_id"]
        ),
        count_replays=sa.update(bo_alerts)
        .where(bo_alerts.c.response_id == sa.bindparam("rid"))
        .values(duplicates=bo_alerts.c.duplicates + sa.bindparam("n")),
        upsert_hubs=upsert_hubs,
        insert_events=_insert_values(
            conn, bo_firmware_events, _EVENT_COLUMNS
        ).on_conflict_do_nothing(index_elements=["response_id"]),
    )


# The hub columns a batch reads (locked, on PostgreSQL) before folding its alerts in.
_HUB_READ = ("device_id", "active_version", "changed_at", "latest_alert_at", "latest_counter")
_ALERT_COLUMNS = (
    "response_id",
    "alert_code",
    "device_id",
    "firmware_version",
    "mismatch_alert_code",
    "schema_version",
    "alert_time",
    "received_at",
    "signer",
    "digest",
    "duplicates",
    "document",
)
_HUB_COLUMNS = (
    "device_id",
    "active_version",
    "changed_at",
    "latest_alert_at",
    "latest_response_id",
    "latest_counter",
    "updated_at",
    "lookup_pending",
    "lookup_attempts",
    "lookup_error",
)
_EVENT_COLUMNS = (
    "device_id",
    "response_id",
    "alert_code",
    "firmware_version",
    "version_source",
    "alert_time",
    "received_at",
    "applied",
)


def _insert_values(
    conn: Connection, table: sa.Table, columns: tuple[str, ...]
) -> sqlite.Insert | postgresql.Insert:
    """INSERT of ``columns``, each bound as ``b_<column>`` (rows carry driver values:
    :func:`chfw.shared.db.bulk.execute_many` passes them to the driver as they are)."""
    return insert_for(conn, table).values({name: sa.bindparam(f"b_{name}") for name in columns})
