"""A small estate for campaign tests: hubs in regions, each with one electricity meter point
whose Import Supplier is one of two Service Users."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from chfw.core.domain import DeviceId, Fuel, MeterPoint, UserId
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import estate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = UserId.parse("90-B3-D5-1F-30-01-00-01")
BOB = UserId.parse("90-B3-D5-1F-30-01-00-02")
TARGET = "02010300"


def device(n: int) -> DeviceId:
    return DeviceId.from_int(0x001DA10000000000 + n)


def supplier_of(n: int) -> UserId:
    """Even hubs are Alice's, odd ones Bob's."""
    return ALICE if n % 2 == 0 else BOB


def region_of(n: int) -> CspRegion:
    return (CspRegion.NORTH, CspRegion.CENTRAL, CspRegion.SOUTH)[n % 3]


def seed_estate(conn: Connection, hubs: int) -> list[DeviceId]:
    """Hubs 1..hubs, region by n % 3, supplier by n % 2."""
    out = []
    for n in range(1, hubs + 1):
        point = MeterPoint(f"{1_000_000_000_000 + n:013d}", Fuel.ELECTRICITY, supplier_of(n))
        estate.add_hub(conn, device(n), region_of(n), [point], at=NOW)
        out.append(device(n))
    return out
