"""chfw.dsp.store.feed below the HTTP API: gains written by imports, numbering, migration 0013."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, Fuel, MeterPoint
from chfw.dsp.estate_file import CspRegion, EstateRecord
from chfw.dsp.store import estate, feed, migrate
from chfw.dsp.store.schema import firmware_history, supplier_gains
from chfw.shared.db.engine import create_engine_for
from tests.small_dsp import ALICE, BOB, CAROL

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HUB_A = DeviceId.parse("00-1D-A1-00-00-00-10-01")
HUB_B = DeviceId.parse("00-1D-A1-00-00-00-10-02")
MPAN = "1500000000001"


def gains(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(supplier_gains.c.user_id, supplier_gains.c.device_id).order_by(
                supplier_gains.c.id
            )
        )
        return [(u, d) for u, d in rows]


def place(engine: Engine, hub: DeviceId, supplier: object, gas: object = None) -> None:
    points = [EstateRecord(hub, CspRegion.NORTH, MeterPoint(MPAN, Fuel.ELECTRICITY, supplier))]  # type: ignore[arg-type]
    if gas is not None:
        point = MeterPoint("15000001", Fuel.GAS, gas_supplier=gas)  # type: ignore[arg-type]
        points.append(EstateRecord(hub, CspRegion.NORTH, point))
    with engine.begin() as conn:
        estate.import_records(conn, points, AT)


class TestGains:
    def test_new_pairs_only(self, engine: Engine) -> None:
        place(engine, HUB_A, ALICE)
        place(engine, HUB_A, ALICE)  # imported again: nothing new
        place(engine, HUB_A, ALICE, gas=BOB)  # Bob comes in through the gas meter
        assert gains(engine) == [(ALICE.hex, HUB_A.hex), (BOB.hex, HUB_A.hex)]

    def test_a_meter_point_moved_to_another_hub(self, engine: Engine) -> None:
        place(engine, HUB_A, ALICE)
        place(engine, HUB_B, ALICE)  # the same MPAN now on hub B: Alice gains B, loses A
        assert gains(engine) == [(ALICE.hex, HUB_A.hex), (ALICE.hex, HUB_B.hex)]
        with engine.connect() as conn:
            assert feed.holders(conn, [HUB_A.hex, HUB_B.hex]) == {(ALICE.hex, HUB_B.hex)}

    def test_lost_and_regained_is_a_second_gain(self, engine: Engine) -> None:
        place(engine, HUB_A, ALICE)
        place(engine, HUB_A, CAROL)
        place(engine, HUB_A, ALICE)
        assert gains(engine) == [
            (ALICE.hex, HUB_A.hex),
            (CAROL.hex, HUB_A.hex),
            (ALICE.hex, HUB_A.hex),
        ]


class TestNumbering:
    def test_numbered_end_reads_only_when_nothing_waits(self, engine: Engine) -> None:
        place(engine, HUB_A, ALICE)
        with engine.connect() as conn:
            assert feed.numbered_end(conn) is None  # the gain waits for a position
        with engine.begin() as conn:
            end = feed.sequence(conn)
        with engine.connect() as conn:
            assert feed.numbered_end(conn) == end == 2
        with engine.begin() as conn:
            assert feed.sequence(conn) == end  # nothing new: the same end


def test_migration_0013_backfills_gains_and_sets_old_history_aside(empty_database_url: str) -> None:
    engine = create_engine_for(empty_database_url)
    try:
        migrate.upgrade(engine, "0012")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO hubs (device_id, csp_region, status, active_firmware, created_at)"
                    " VALUES (:d, 'north', 'commissioned', '0102', :t)"
                ),
                {"d": HUB_A.hex, "t": AT},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO meter_points (identifier, fuel, device_id, import_supplier,"
                    " gas_supplier) VALUES (:m, 'electricity', :d, :a, NULL),"
                    " ('15000001', 'gas', :d, NULL, :b)"
                ),
                {"m": MPAN, "d": HUB_A.hex, "a": ALICE.hex, "b": BOB.hex},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO firmware_history (device_id, originator_counter, event, source,"
                    " result, decision, recorded_at) VALUES (:d, '1', 'outcome', 'response',"
                    " 'success', 'new_version', :t)"
                ),
                {"d": HUB_A.hex, "t": AT},
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            seqs = conn.execute(sa.select(firmware_history.c.feed_seq)).scalars().all()
            backfilled = conn.execute(
                sa.select(
                    supplier_gains.c.user_id,
                    supplier_gains.c.firmware_version,
                    supplier_gains.c.history_id,
                ).order_by(supplier_gains.c.user_id)
            ).all()
            history_id = conn.execute(sa.select(firmware_history.c.id)).scalar_one()
    finally:
        engine.dispose()
    assert seqs == [0]
    assert [tuple(r) for r in backfilled] == [
        (ALICE.hex, "0102", history_id),
        (BOB.hex, "0102", history_id),
    ]
