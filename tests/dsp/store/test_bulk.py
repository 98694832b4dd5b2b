"""Bulk writes through the driver store exactly what SQLAlchemy's own statements store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import estate, inventory
from chfw.dsp.store.schema import audit_log, firmware_history, hubs
from chfw.shared.db import bulk
from chfw.shared.db.bulk import (
    ArrayRows,
    driver_value,
    execute_many,
    insert_rows,
    insert_rows_returning,
    lookup,
    lookup_sql,
    result_processor,
    run_sql,
)
from chfw.shared.db.sql import IN_LIST_MAX, among, from_db, to_db

AT = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _history_row(conn: sa.Connection, n: int, at: datetime | None) -> tuple[object, ...]:
    return (
        "001DA10000000042",
        "90B3D51F30020000",  # the command's sender
        str(n),
        "outcome",
        "response",
        "success",
        "new_version",
        None,
        None,
        None,
        driver_value(conn, firmware_history.c.occurred_at, at),
        driver_value(conn, firmware_history.c.recorded_at, AT),
        "csp-north",
        n % 3,
        None,
        None,  # content digest
    )


COLUMNS = inventory._HISTORY_COLUMNS  # the intake's own history insert
KEY = ("device_id", "sender", "originator_counter", "event")


class TestInsertReturning:
    def test_every_row_comes_back_once_with_its_own_id(self, engine: Engine) -> None:
        # 1,201 rows: more than one statement's worth, and a short last statement.
        with engine.begin() as conn:
            rows = [_history_row(conn, n, AT + timedelta(seconds=n)) for n in range(1201)]
            returned = insert_rows_returning(conn, firmware_history, COLUMNS, rows, ("id", *KEY))
        assert len(returned) == 1201
        ids = {row[3]: row[0] for row in returned}
        assert sorted(ids) == sorted(str(n) for n in range(1201))
        with engine.connect() as conn:
            stored = {
                row.originator_counter: row for row in conn.execute(sa.select(firmware_history))
            }
        for counter, row_id in ids.items():
            row = stored[counter]
            assert row.id == row_id
            n = int(counter)
            assert from_db(row.occurred_at) == AT + timedelta(seconds=n)
            assert from_db(row.recorded_at) == AT
            assert row.alerts_created == n % 3

    def test_rows_over_several_array_statements(
        self, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # PostgreSQL sends at most _ARRAY_ROWS rows per statement: 1,201 make three.
        monkeypatch.setattr(bulk, "_ARRAY_ROWS", 500)
        with engine.begin() as conn:
            rows = [_history_row(conn, n, AT) for n in range(1201)]
            returned = insert_rows_returning(conn, firmware_history, COLUMNS, rows, ("id", *KEY))
            at = driver_value(conn, audit_log.c.at, AT)
            insert_rows(
                conn,
                audit_log,
                ("at", "actor", "action", "detail"),
                [
                    (at, "ops", f"a{n}", driver_value(conn, audit_log.c.detail, {"n": n}))
                    for n in range(1201)
                ],
            )
        assert sorted(row[3] for row in returned) == sorted(str(n) for n in range(1201))
        assert len({row[0] for row in returned}) == 1201
        with engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(audit_log)
            assert conn.execute(count.where(audit_log.c.actor == "ops")).scalar() == 1201

    def test_times_read_back_as_sqlalchemy_would_store_them(self, engine: Engine) -> None:
        # The same moment in another zone is stored as UTC, to the microsecond.
        elsewhere = AT.astimezone(timezone(timedelta(hours=5, minutes=30)))
        with engine.begin() as conn:
            insert_rows_returning(
                conn, firmware_history, COLUMNS, [_history_row(conn, 1, to_db(elsewhere))], KEY
            )
            conn.execute(
                sa.insert(firmware_history).values(
                    dict(zip(COLUMNS, _history_row(conn, 2, None), strict=True))
                    | {"occurred_at": to_db(elsewhere), "recorded_at": AT}
                )
            )
        with engine.connect() as conn:
            raw = conn.execute(
                sa.select(firmware_history.c.occurred_at).order_by(
                    firmware_history.c.originator_counter
                )
            ).scalars()
            bulk, orm = list(raw)
        assert bulk == orm
        assert from_db(bulk) == AT

    def test_null_time_stays_null(self, engine: Engine) -> None:
        with engine.begin() as conn:
            insert_rows_returning(
                conn, firmware_history, COLUMNS, [_history_row(conn, 1, None)], KEY
            )
        with engine.connect() as conn:
            assert conn.execute(sa.select(firmware_history.c.occurred_at)).scalar_one() is None

    def test_nothing_to_insert_runs_nothing(self, engine: Engine) -> None:
        with engine.begin() as conn:
            assert insert_rows_returning(conn, firmware_history, COLUMNS, [], KEY) == []

    def test_a_duplicate_key_fails_the_statement(self, engine: Engine) -> None:
        with engine.connect() as conn:
            row = _history_row(conn, 7, None)
            with pytest.raises(sa.exc.IntegrityError):
                insert_rows_returning(conn, firmware_history, COLUMNS, [row, row], KEY)
            conn.rollback()
            count = sa.select(sa.func.count()).select_from(firmware_history)
            assert conn.execute(count).scalar() == 0

    def test_a_value_too_long_for_its_column_is_refused_not_cut(self, engine: Engine) -> None:
        # PostgreSQL gets one array per column; casting it to VARCHAR(n)[] would cut
        # a longer value silently, where a plain INSERT refuses it. (SQLite keeps
        # any length: the value is stored whole.)
        with engine.connect() as conn:
            row = list(_history_row(conn, 8, None))
            row[COLUMNS.index("csp")] = "x" * 101  # csp is VARCHAR(100)
            if conn.dialect.name == "postgresql":
                with pytest.raises(sa.exc.DataError, match="too long"):
                    insert_rows_returning(conn, firmware_history, COLUMNS, [tuple(row)], KEY)
                return
            insert_rows_returning(conn, firmware_history, COLUMNS, [tuple(row)], KEY)
            assert conn.execute(sa.select(firmware_history.c.csp)).scalar_one() == "x" * 101


class TestAmong:
    """``column IN values``, as ``= ANY(array)`` on PostgreSQL: the same rows either way."""

    def test_finds_exactly_the_listed_rows(self, engine: Engine) -> None:
        devices = [DeviceId.parse(f"00-1D-A1-00-00-00-02-{n:02X}") for n in range(5)]
        with engine.begin() as conn:
            for device in devices:
                estate.add_hub(conn, device, CspRegion.NORTH)
            wanted = [devices[1].hex, devices[3].hex, "FFFFFFFFFFFFFFFF"]
            found = conn.execute(
                sa.select(hubs.c.device_id).where(among(conn, hubs.c.device_id, wanted))
            ).scalars()
            assert sorted(found) == [devices[1].hex, devices[3].hex]
            nothing = sa.select(hubs.c.device_id).where(among(conn, hubs.c.device_id, []))
            assert conn.execute(nothing).first() is None

    def test_a_longer_value_does_not_match_its_prefix(self, engine: Engine) -> None:
        # A cast to the column's VARCHAR(16)[] would cut the value to a real CH's ID.
        device = DeviceId.parse("00-1D-A1-00-00-00-03-01")
        with engine.begin() as conn:
            estate.add_hub(conn, device, CspRegion.NORTH)
            longer = sa.select(hubs.c.device_id).where(
                among(conn, hubs.c.device_id, [device.hex + "00"])
            )
            assert conn.execute(longer).first() is None


class TestArrayRows:
    """PostgreSQL's set-based UPDATE ... FROM unnest(arrays): one statement for a batch."""

    def test_update_from_rows(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            pytest.skip("one array per column is PostgreSQL's")
        rows = ArrayRows("changes", {"device_id": sa.String(), "version": sa.String()})
        update = (
            sa.update(hubs)
            .where(hubs.c.device_id == rows.c.device_id)
            .values(active_firmware=rows.c.version)
        )
        devices = [DeviceId.parse(f"00-1D-A1-00-00-00-04-{n:02X}") for n in range(3)]
        with engine.begin() as conn:
            for device in devices:
                estate.add_hub(conn, device, CspRegion.NORTH)
            result = conn.execute(
                update, rows.params([(devices[0].hex, "0A0B"), (devices[2].hex, "0C0D")])
            )
            assert result.rowcount == 2
            found = dict(conn.execute(sa.select(hubs.c.device_id, hubs.c.active_firmware)).all())
        assert found == {devices[0].hex: "0A0B", devices[1].hex: None, devices[2].hex: "0C0D"}

    def test_rows_must_have_every_column(self) -> None:
        rows = ArrayRows("changes", {"device_id": sa.String(), "version": sa.String()})
        with pytest.raises(ValueError, match="argument 2 is shorter"):
            rows.params([("001DA10000000001",)])


class TestInsertAndUpdate:
    def test_executemany_insert(self, engine: Engine) -> None:
        columns = ("at", "actor", "action", "detail")
        with engine.begin() as conn:
            at = driver_value(conn, audit_log.c.at, AT)
            insert_rows(
                conn,
                audit_log,
                columns,
                [
                    (at, "ops", f"test-{n}", driver_value(conn, audit_log.c.detail, {"n": n}))
                    for n in range(3)
                ],
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.action)).all()
        assert [(r.action, r.detail) for r in rows] == [(f"test-{n}", {"n": n}) for n in range(3)]
        assert all(from_db(r.at) == AT for r in rows)

    def test_update_by_key(self, engine: Engine) -> None:
        # The intake's active-firmware update: execute_many with per-row keys.
        devices = [DeviceId.parse(f"00-1D-A1-00-00-00-00-{n:02X}") for n in (1, 2, 3)]
        with engine.begin() as conn:
            for device in devices:
                estate.add_hub(conn, device, CspRegion.NORTH)
            inventory.set_active_firmware_many(
                conn,
                [
                    (d, FirmwareVersion.parse("0000000" + str(n)), AT)
                    for n, d in enumerate(devices[:2])
                ],
            )
        with engine.connect() as conn:
            found = {
                r.device_id: (r.active_firmware, r.firmware_changed_at)
                for r in conn.execute(sa.select(hubs))
            }
        assert found[devices[0].hex][0] == "00000000"
        assert found[devices[1].hex][0] == "00000001"
        assert from_db(found[devices[1].hex][1]) == AT
        assert found[devices[2].hex] == (None, None)

    def test_a_ch_named_twice_ends_with_its_last_change(self, engine: Engine) -> None:
        # PostgreSQL sets them in one statement, where a row may be changed only once.
        device = DeviceId.parse("00-1D-A1-00-00-00-00-09")
        later = AT + timedelta(minutes=1)
        with engine.begin() as conn:
            estate.add_hub(conn, device, CspRegion.NORTH)
            inventory.set_active_firmware_many(
                conn,
                [
                    (device, FirmwareVersion.parse("00000001"), AT),
                    (device, FirmwareVersion.parse("00000002"), later),
                ],
            )
            row = conn.execute(sa.select(hubs)).one()
        assert row.active_firmware == "00000002"
        assert from_db(row.firmware_changed_at) == later


@pytest.mark.parametrize("run", [execute_many], ids=["driver"])
class TestExecuteMany:
    def test_fixed_values_and_expressions_keep_their_meaning(self, engine: Engine, run) -> None:
        # Fixed values (a string, NULL, a time), an expression on the column and
        # per-row bound values, compiled once and run through the driver.
        statement = (
            sa.update(hubs)
            .where(hubs.c.device_id == sa.bindparam("b_device"))
            .values(
                active_firmware=sa.bindparam("b_version"),
                status="retired",
                firmware_changed_at=None,
                created_at=AT,
            )
        )
        devices = [DeviceId.parse(f"00-1D-A1-00-00-00-01-{n:02X}") for n in (1, 2, 3)]
        with engine.begin() as conn:
            for device in devices:
                estate.add_hub(conn, device, CspRegion.NORTH)
            conn.execute(sa.update(hubs).values(firmware_changed_at=AT + timedelta(days=1)))
            run(
                conn,
                statement,
                [
                    {"b_device": d.hex, "b_version": f"0000000{n}"}
                    for n, d in enumerate(devices[:2])
                ],
            )
        with engine.connect() as conn:
            found = {r.device_id: r for r in conn.execute(sa.select(hubs))}
        for n, device in enumerate(devices[:2]):
            row = found[device.hex]
            assert (row.active_firmware, row.status, row.firmware_changed_at) == (
                f"0000000{n}",
                "retired",
                None,
            )
            assert from_db(row.created_at) == AT
        untouched = found[devices[2].hex]
        assert untouched.status != "retired"
        assert from_db(untouched.firmware_changed_at) == AT + timedelta(days=1)

    def test_no_rows_runs_nothing(self, engine: Engine, run) -> None:
        with engine.begin() as conn:
            run(conn, sa.update(hubs).values(status="x"), [])
            assert conn.execute(sa.select(hubs.c.status)).first() is None


class TestDirect:
    """Statements on the driver's own cursor: same rows, same transaction, SQLAlchemy's errors."""

    def _hubs(self, conn: sa.Connection, count: int) -> list[DeviceId]:
        devices = [DeviceId.parse(f"00-1D-A1-00-00-00-04-{n:02X}") for n in range(count)]
        for device in devices:
            estate.add_hub(conn, device, CspRegion.NORTH)
        conn.execute(sa.update(hubs).values(firmware_changed_at=AT))
        return devices

    @pytest.mark.parametrize("lock", [False, True])
    def test_lookup_finds_exactly_the_listed_rows(self, engine: Engine, lock: bool) -> None:
        with engine.begin() as conn:
            devices = self._hubs(conn, 5)
            wanted = [devices[1].hex, devices[3].hex, "FFFFFFFFFFFFFFFF", devices[1].hex + "00"]
            columns = ("device_id", "firmware_changed_at")
            found = lookup(conn, hubs, columns, "device_id", wanted, lock=lock)
            as_time = result_processor(conn.dialect, hubs.c.firmware_changed_at.type)
            read = {d: from_db(as_time(t) if as_time else t) for d, t in found}
            assert read == {devices[1].hex: AT, devices[3].hex: AT}
            assert lookup(conn, hubs, columns, "device_id", []) == []

    def test_lookup_sees_the_transaction_s_own_writes(self, engine: Engine) -> None:
        with engine.begin() as conn:
            (device,) = self._hubs(conn, 1)
            conn.execute(sa.update(hubs).values(active_firmware="0000AA01"))
            rows = lookup(conn, hubs, ("active_firmware",), "device_id", [device.hex])
            assert rows == [("0000AA01",)]

    def test_lookup_text_locks_only_on_postgresql(self, engine: Engine) -> None:
        sql = lookup_sql(engine.dialect, hubs, ("device_id",), "device_id", 3, True)
        if engine.dialect.name == "postgresql":
            assert sql.endswith("= ANY(%s) FOR UPDATE")
        else:
            assert sql.endswith("IN (?, ?, ?)")

    def test_too_many_values_are_refused(self, engine: Engine) -> None:
        with engine.connect() as conn, pytest.raises(ValueError, match="at most"):
            lookup(conn, hubs, ("device_id",), "device_id", ["00"] * (IN_LIST_MAX + 1))

    def test_a_driver_error_comes_out_as_sqlalchemy_s(self, engine: Engine) -> None:
        insert = sa.insert(hubs).values(
            device_id=sa.bindparam("b_device"),
            csp_region="north",
            status="installed",
            created_at=AT,
        )
        with engine.connect() as conn:
            row = {"b_device": "001DA10000000501"}
            with pytest.raises(sa.exc.IntegrityError):
                execute_many(conn, insert, [row, row])
            conn.rollback()
            assert conn.execute(sa.select(sa.func.count()).select_from(hubs)).scalar() == 0
            with pytest.raises(sa.exc.DBAPIError, match="no_such_column"):
                run_sql(conn, "SELECT no_such_column FROM hubs", ())
            conn.rollback()
            execute_many(conn, insert, [row])  # the connection is still usable
            conn.commit()
        with engine.connect() as conn:
            assert conn.execute(sa.select(hubs.c.device_id)).scalars().all() == [row["b_device"]]


class TestMistakes:
    def test_unknown_column_is_named(self, engine: Engine) -> None:
        with engine.begin() as conn, pytest.raises(ValueError, match="no column 'colour'"):
            insert_rows(conn, hubs, ("device_id", "colour"), [("00", "red")])

    def test_unsupported_parameter_style_is_refused(self) -> None:
        from chfw.shared.db.bulk import _insert_sql

        with pytest.raises(NotImplementedError, match="numeric"):
            _insert_sql(sqlite.dialect(paramstyle="numeric"), hubs, ("device_id",), 1)
