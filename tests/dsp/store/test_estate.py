"""The estate repository: bulk upserts, hub lookups and the firmware distribution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, FirmwareVersion, Fuel, MeterPoint, UserId
from chfw.dsp.estate_file import CspRegion, EstateRecord
from chfw.dsp.store import estate, inventory
from chfw.dsp.store.schema import hubs

CH = DeviceId.parse("00-1D-A1-00-00-00-00-42")
OTHER = DeviceId.parse("00-1D-A1-00-00-00-00-43")
IS = UserId.parse("90-B3-D5-1F-30-01-00-00")
GS = UserId.parse("90-B3-D5-1F-30-02-00-00")
ELEC = MeterPoint("1200012345678", Fuel.ELECTRICITY, import_supplier=IS)
GAS = MeterPoint("1234567", Fuel.GAS, gas_supplier=GS)
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class TestHubs:
    """Adding CHs and reading one back."""

    def test_add_hub_and_get_it(self, engine: Engine) -> None:
        with engine.begin() as conn:
            estate.add_hub(conn, CH, CspRegion.NORTH, [GAS, ELEC])
        with engine.connect() as conn:
            hub = estate.get_hub(conn, CH)
            points = estate.meter_points_for(conn, CH)
            assert estate.get_hub(conn, OTHER) is None
            assert estate.meter_points_for(conn, OTHER) == []
        assert hub == estate.Hub(CH, CspRegion.NORTH, "commissioned", None, None)
        assert points == [ELEC, GAS]  # ordered by identifier

    def test_get_hub_for_update_works_on_sqlite(self, engine: Engine) -> None:
        with engine.begin() as conn:
            estate.add_hub(conn, CH, CspRegion.SOUTH)
            hub = estate.get_hub(conn, CH, for_update=True)
        assert hub is not None
        assert hub.csp_region is CspRegion.SOUTH

    def test_upsert_moves_region_but_keeps_inventory(self, engine: Engine) -> None:
        with engine.begin() as conn:
            estate.add_hub(conn, CH, CspRegion.NORTH)
            inventory.set_active_firmware(conn, CH, FirmwareVersion.parse("0102"), AT)
            estate.upsert_hubs(conn, [(CH, CspRegion.CENTRAL)])
        with engine.connect() as conn:
            hub = estate.get_hub(conn, CH)
        assert hub is not None
        assert hub.csp_region is CspRegion.CENTRAL
        assert hub.active_firmware == FirmwareVersion.parse("0102")
        assert hub.firmware_changed_at == AT

    def test_meter_point_can_move_to_another_hub(self, engine: Engine) -> None:
        with engine.begin() as conn:
            estate.add_hub(conn, CH, CspRegion.NORTH, [ELEC])
            estate.add_hub(conn, OTHER, CspRegion.NORTH, [ELEC])
        with engine.connect() as conn:
            assert estate.meter_points_for(conn, CH) == []
            assert estate.meter_points_for(conn, OTHER) == [ELEC]

    def test_meter_point_needs_its_hub(self, engine: Engine) -> None:
        with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
            estate.upsert_meter_points(conn, [(CH, ELEC)])


class TestBulkImport:
    """import_records writes thousands of rows in chunks, idempotently."""

    @staticmethod
    def records(n: int) -> list[EstateRecord]:
        regions = list(CspRegion)
        out = []
        for i in range(n):
            device = DeviceId.from_int(0x001DA10000000000 + i // 2)
            if i % 2:
                point = MeterPoint(f"{9_000_000 + i:010d}", Fuel.GAS, gas_supplier=GS)
            else:
                point = MeterPoint(f"{i:013d}", Fuel.ELECTRICITY, import_supplier=IS)
            out.append(EstateRecord(device, regions[(i // 2) % 3], point))
        return out

    def test_ten_thousand_rows(self, engine: Engine) -> None:
        rows = self.records(10_000)
        with engine.begin() as conn:
            counts = estate.import_records(conn, rows)
        with engine.connect() as conn:
            assert estate.count_hubs(conn) == 5_000
            assert estate.count_meter_points(conn) == 10_000
            by_region = estate.hubs_by_region(conn)
            sample = estate.meter_points_for(conn, rows[0].device_id)
        assert counts == estate.ImportCounts(hubs=5_000, meter_points=10_000)
        assert sum(by_region.values()) == 5_000
        assert set(by_region) == set(CspRegion)
        assert {point.fuel for point in sample} == {Fuel.ELECTRICITY, Fuel.GAS}

    def test_importing_again_changes_nothing(self, engine: Engine) -> None:
        rows = self.records(300)
        with engine.begin() as conn:
            estate.import_records(conn, rows)
            estate.import_records(conn, rows)
        with engine.connect() as conn:
            assert (estate.count_hubs(conn), estate.count_meter_points(conn)) == (150, 300)

    def test_hub_without_meter(self, engine: Engine) -> None:
        with engine.begin() as conn:
            counts = estate.import_records(conn, [EstateRecord(CH, CspRegion.SOUTH, None)])
        assert counts == estate.ImportCounts(hubs=1, meter_points=0)


class TestFirmwareDistribution:
    """CHs per active version, over the estate and per region; None = never reported."""

    def test_distribution(self, engine: Engine) -> None:
        devices = [DeviceId.from_int(i + 1) for i in range(6)]
        regions = [CspRegion.NORTH, CspRegion.NORTH, CspRegion.SOUTH] * 2
        versions = ["0102", "0102", "0103", None, "0103", None]
        with engine.begin() as conn:
            estate.upsert_hubs(conn, zip(devices, regions, strict=True))
            for device, version in zip(devices, versions, strict=True):
                if version:
                    inventory.set_active_firmware(conn, device, FirmwareVersion.parse(version), AT)
        with engine.connect() as conn:
            overall = estate.firmware_distribution(conn)
            south = estate.firmware_distribution(conn, CspRegion.SOUTH)
            by_region = estate.firmware_distribution_by_region(conn)
        assert overall == {"0102": 2, "0103": 2, None: 2}
        assert south == {"0103": 1, None: 1}
        assert by_region[CspRegion.SOUTH] == south
        assert by_region[CspRegion.NORTH] == {"0102": 2, "0103": 1, None: 1}
        assert CspRegion.CENTRAL not in by_region

    def test_empty_estate(self, engine: Engine) -> None:
        with engine.connect() as conn:
            assert estate.firmware_distribution(conn) == {}
            assert estate.count_hubs(conn) == 0
            assert conn.execute(sa.select(sa.func.count()).select_from(hubs)).scalar() == 0
