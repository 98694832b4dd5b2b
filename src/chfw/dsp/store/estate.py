"""The estate: Communications Hubs, their CSP region, and the meter points on each.

Bulk writes are upserts in chunks (one ``executemany`` per chunk), so an
estate file of millions of rows imports in bounded memory and can simply be
imported again after a correction: the later row wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, Eui64, FirmwareVersion, Fuel, MeterPoint, Report, UserId
from chfw.dsp.estate_file import CspRegion, EstateRecord
from chfw.dsp.store import feed
from chfw.dsp.store.schema import hubs, meter_points
from chfw.shared.db.sql import among, chunked, from_db_opt, insert_for

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Hub:
    """A CH as the inventory knows it."""

    device_id: DeviceId
    csp_region: CspRegion
    status: str
    active_firmware: FirmwareVersion | None  # None: no activation ever reported
    firmware_changed_at: datetime | None
    latest: Report | None = None  # the newest success processed (chfw.core.domain.ordering)


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What one :func:`import_records` call wrote."""

    hubs: int
    meter_points: int


def upsert_hubs(
    conn: Connection, hubs_in: Iterable[tuple[DeviceId, CspRegion]], at: datetime | None = None
) -> int:
    """Add CHs, or move known ones to the region given; inventory fields are left alone."""
    moment = at or utc_now()
    insert = insert_for(conn, hubs)
    stmt = insert.on_conflict_do_update(
        index_elements=["device_id"], set_={"csp_region": insert.excluded.csp_region}
    )
    written = 0
    for chunk in chunked(hubs_in, CHUNK):
        rows = [
            {"device_id": device.hex, "csp_region": region.value, "created_at": moment}
            for device, region in chunk
        ]
        conn.execute(stmt, rows)
        written += len(rows)
    return written


def upsert_meter_points(
    conn: Connection, points: Iterable[tuple[DeviceId, MeterPoint]], at: datetime | None = None
) -> int:
    """Add meter points or replace their hub, fuel and suppliers. Their CHs must exist.

    A Service User that becomes a supplier of a CH it was not one of gains it: the
    gain is written for the catch-up feed (:func:`chfw.dsp.store.feed.record_gains`).
    """
    moment = at or utc_now()
    insert = insert_for(conn, meter_points)
    stmt = insert.on_conflict_do_update(
        index_elements=["identifier"],
        set_={
            name: insert.excluded[name]
            for name in ("fuel", "device_id", "import_supplier", "export_supplier", "gas_supplier")
        },
    )
    written = 0
    for chunk in chunked(points, CHUNK):
        rows = [_point_row(device, point) for device, point in chunk]
        touched = {row["device_id"] for row in rows}
        touched |= feed.devices_of_points(conn, (row["identifier"] for row in rows))
        before = feed.holders(conn, touched)
        conn.execute(stmt, rows)
        feed.record_gains(conn, before, touched, moment)
        written += len(chunk)
    return written


def import_records(
    conn: Connection, records: Sequence[EstateRecord], at: datetime | None = None
) -> ImportCounts:
    """Write one batch of parsed estate records: their CHs first, then their meter points."""
    regions: dict[DeviceId, CspRegion] = {}
    points: dict[str, tuple[DeviceId, MeterPoint]] = {}
    for record in records:
        regions[record.device_id] = record.csp_region
        if record.meter_point is not None:
            points[record.meter_point.identifier] = (record.device_id, record.meter_point)
    return ImportCounts(
        hubs=upsert_hubs(conn, regions.items(), at),
        meter_points=upsert_meter_points(conn, points.values(), at),
    )


def add_hub(
    conn: Connection,
    device_id: DeviceId,
    region: CspRegion,
    points: Iterable[MeterPoint] = (),
    at: datetime | None = None,
) -> None:
    """One CH and its meter points (tests and small tools; bulk paths use the upserts)."""
    upsert_hubs(conn, [(device_id, region)], at)
    upsert_meter_points(conn, [(device_id, point) for point in points], at)


def _point_row(device: DeviceId, point: MeterPoint) -> dict[str, Any]:
    def hex_or_none(user: UserId | None) -> str | None:
        return None if user is None else user.hex

    return {
        "identifier": point.identifier,
        "fuel": point.fuel.value,
        "device_id": device.hex,
        "import_supplier": hex_or_none(point.import_supplier),
        "export_supplier": hex_or_none(point.export_supplier),
        "gas_supplier": hex_or_none(point.gas_supplier),
    }


def get_hub(conn: Connection, device_id: DeviceId, *, for_update: bool = False) -> Hub | None:
    """The CH's inventory row, or None when it is not in the estate.

    ``for_update`` locks the row on PostgreSQL so that concurrent outcomes for
    one CH serialise (SQLite's BEGIN IMMEDIATE already serialises writers).
    """
    query = sa.select(hubs).where(hubs.c.device_id == device_id.hex)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    return Hub(
        device_id=DeviceId.parse(row.device_id),
        csp_region=CspRegion(row.csp_region),
        status=row.status,
        active_firmware=FirmwareVersion.parse(row.active_firmware) if row.active_firmware else None,
        firmware_changed_at=from_db_opt(row.firmware_changed_at),
    )


def meter_points_for(conn: Connection, device_id: DeviceId) -> list[MeterPoint]:
    """The meter points whose meters are on this CH's HAN, by identifier."""
    rows = conn.execute(
        sa.select(meter_points)
        .where(meter_points.c.device_id == device_id.hex)
        .order_by(meter_points.c.identifier)
    )

    def user(text: str | None) -> UserId | None:
        return None if text is None else UserId.parse(text)

    return [
        MeterPoint(
            identifier=row.identifier,
            fuel=Fuel(row.fuel),
            import_supplier=user(row.import_supplier),
            export_supplier=user(row.export_supplier),
            gas_supplier=user(row.gas_supplier),
        )
        for row in rows
    ]


def count_hubs(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(hubs)).scalar_one())


def count_meter_points(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(meter_points)).scalar_one())


def hubs_by_region(conn: Connection) -> dict[CspRegion, int]:
    """CHs per CSP region (regions with none are left out)."""
    rows = conn.execute(sa.select(hubs.c.csp_region, sa.func.count()).group_by(hubs.c.csp_region))
    return {CspRegion(region): int(count) for region, count in rows}


def firmware_distribution(
    conn: Connection, region: CspRegion | None = None
) -> dict[str | None, int]:
    """CHs per active firmware version (upper-case hex); None counts CHs never reported.

    Over the whole estate, or one CSP region.
    """
    query = sa.select(hubs.c.active_firmware, sa.func.count()).group_by(hubs.c.active_firmware)
    if region is not None:
        query = query.where(hubs.c.csp_region == region.value)
    return {version: int(count) for version, count in conn.execute(query)}


def firmware_distribution_by_region(
    conn: Connection,
) -> dict[CspRegion, dict[str | None, int]]:
    """:func:`firmware_distribution` for each region, in one query."""
    query = sa.select(hubs.c.csp_region, hubs.c.active_firmware, sa.func.count()).group_by(
        hubs.c.csp_region, hubs.c.active_firmware
    )
    result: dict[CspRegion, dict[str | None, int]] = {}
    for region, version, count in conn.execute(query):
        result.setdefault(CspRegion(region), {})[version] = int(count)
    return result


def lock_hubs(
    conn: Connection, device_ids: Iterable[DeviceId], *, lock: bool = True
) -> dict[DeviceId, Hub]:
    """Many CHs in one query; on PostgreSQL their rows stay locked until the transaction ends.

    Rows are locked in device order, so two intake processes with overlapping
    batches queue on each other instead of deadlocking. ``lock=False`` only reads.
    """
    ordered = sorted({device.hex: device for device in device_ids}.items())
    found: dict[DeviceId, Hub] = {}
    # A wave's CHs share a handful of regions and versions: parse each text once.
    regions: dict[str, CspRegion] = {}
    versions: dict[str, FirmwareVersion] = {}
    senders: dict[str, Eui64] = {}
    for chunk in chunked(ordered, 900):
        by_hex = dict(chunk)
        query = sa.select(
            hubs.c.device_id,
            hubs.c.csp_region,
            hubs.c.status,
            hubs.c.active_firmware,
            hubs.c.firmware_changed_at,
            hubs.c.latest_report_at,
            hubs.c.latest_report_sender,
            hubs.c.latest_report_counter,
        ).where(among(conn, hubs.c.device_id, by_hex))
        query = query.order_by(hubs.c.device_id)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        for (
            device_hex,
            region_text,
            status,
            version_text,
            changed_at,
            report_at,
            sender,
            counter,
        ) in conn.execute(query):
            region = regions.get(region_text)
            if region is None:
                region = regions[region_text] = CspRegion(region_text)
            version = versions.get(version_text) if version_text else None
            if version is None and version_text:
                version = versions[version_text] = FirmwareVersion.parse(version_text)
            device = by_hex[device_hex]
            latest = (
                Report(from_db_opt(report_at), _eui(sender, senders), int(counter))
                if sender is not None and counter is not None
                else None
            )
            found[device] = Hub(device, region, status, version, from_db_opt(changed_at), latest)
    return found


def _eui(text: str, seen: dict[str, Eui64]) -> Eui64:
    found = seen.get(text)
    if found is None:
        found = seen[text] = Eui64(bytes.fromhex(text))
    return found


def meter_points_for_many(
    conn: Connection, device_ids: Iterable[DeviceId]
) -> dict[DeviceId, list[MeterPoint]]:
    """The meter points of many CHs in few queries (CHs without any are absent)."""
    by_hex = {device.hex: device for device in device_ids}
    out: dict[DeviceId, list[MeterPoint]] = {}
    users: dict[str, UserId] = {}

    def user(text: str | None) -> UserId | None:
        if text is None:
            return None
        found = users.get(text)
        if found is None:
            found = users[text] = UserId.parse(text)
        return found

    fuels = {fuel.value: fuel for fuel in Fuel}
    for chunk in chunked(sorted(by_hex), 900):
        rows = conn.execute(
            sa.select(
                meter_points.c.device_id,
                meter_points.c.identifier,
                meter_points.c.fuel,
                meter_points.c.import_supplier,
                meter_points.c.export_supplier,
                meter_points.c.gas_supplier,
            )
            .where(among(conn, meter_points.c.device_id, chunk))
            .order_by(meter_points.c.device_id, meter_points.c.identifier)
        )
        for device_hex, identifier, fuel, import_, export, gas in rows:
            out.setdefault(by_hex[device_hex], []).append(
                MeterPoint(
                    identifier=identifier,
                    fuel=fuels[fuel] if fuel in fuels else Fuel(fuel),
                    import_supplier=user(import_),
                    export_supplier=user(export),
                    gas_supplier=user(gas),
                )
            )
    return out
