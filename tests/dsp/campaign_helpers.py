"""A small estate for campaign tests: hubs in regions, each with one electricity meter point
whose Import Supplier is one of two Service Users."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from chfw.core.domain import DeviceId, Fuel, MeterPoint, UserId
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import estate
from tests.small_dsp import ALICE, BOB  # the Service Users tests.small_dsp adds

__all__ = ["ALICE", "BOB", "NOW", "TARGET", "device", "number", "seed_estate", "supplier_of"]

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TARGET = "02010300"


BASE = 0x001DA10000010000  # clear of tests.small_dsp's CH1-CH4


def number(d: DeviceId) -> int:
    return int(d) - BASE


def device(n: int) -> DeviceId:
    return DeviceId.from_int(BASE + n)


def supplier_of(n: int) -> UserId:
    """Even hubs are Alice's, odd ones Bob's."""
    return ALICE if n % 2 == 0 else BOB


def region_of(n: int) -> CspRegion:
    return (CspRegion.NORTH, CspRegion.CENTRAL, CspRegion.SOUTH)[n % 3]


def seed_estate(conn: Connection, hubs: int) -> list[DeviceId]:
    """Hubs 1..hubs, region by n % 3, supplier by n % 2."""
    out = []
    for n in range(1, hubs + 1):
        point = MeterPoint(f"{2_000_000_000_000 + n:013d}", Fuel.ELECTRICITY, supplier_of(n))
        estate.add_hub(conn, device(n), region_of(n), [point], at=NOW)
        out.append(device(n))
    return out
