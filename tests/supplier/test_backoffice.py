"""The back office store: dedupe on ResponseID, order by alert time, keep history and rejections."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.dsp.store import migrate as dsp_migrate
from chfw.shared.db.engine import create_engine_for
from chfw.supplier import backoffice, migrate
from chfw.supplier.facts import AlertFacts
from chfw.supplier.schema import bo_alerts, bo_hubs, metadata
from tests.supplier.helpers import CH, CH2, T0

NOW = T0 + timedelta(days=1)


def _facts(
    counter: int,
    version: str | None = "02010300",
    *,
    at_minutes: int = 0,
    code: str = "N64",
    device: DeviceId = CH,
    mismatch: str | None = None,
) -> AlertFacts:
    return AlertFacts(
        response_id=f"90-B3-D5-1F-30-00-00-02:{device}:{counter}",
        alert_code=code,
        schema_version="5.1",
        alert_time=T0 + timedelta(minutes=at_minutes),
        device_id=device,
        firmware_version=version or None,
        counter=counter,
        mismatch_alert_code=mismatch,
    )


def _record(engine: Engine, facts: AlertFacts, digest: str = "00" * 32) -> backoffice.RecordResult:
    with engine.begin() as conn:
        return backoffice.record_alert(
            conn, facts, document=b"<doc/>", signer="CN=DSP", digest=digest, now=NOW
        )


def _hub(engine: Engine, device: DeviceId = CH) -> backoffice.HubView:
    with engine.connect() as conn:
        view = backoffice.hub_view(conn, device)
    assert view is not None
    return view


class TestDedupe:
    """A ResponseID is recorded once; replays are counted, and different content is flagged."""

    def test_second_copy_is_a_duplicate(self, engine: Engine) -> None:
        first = _record(engine, _facts(1))
        second = _record(engine, _facts(1))
        assert (first.duplicate, first.applied) == (False, True)
        assert (second.duplicate, second.applied, second.same_content) == (True, False, True)
        with engine.connect() as conn:
            (row,) = backoffice.list_alerts(conn)
        assert row.duplicates == 1
        assert len(_hub(engine).history) == 1

    def test_same_id_other_content_is_flagged_and_the_first_kept(self, engine: Engine) -> None:
        _record(engine, _facts(1, "01"), digest="aa" * 32)
        replay = _record(engine, _facts(1, "02"), digest="bb" * 32)
        assert replay.duplicate
        assert not replay.same_content
        assert _hub(engine).active_version == "01"


class TestOrdering:
    """The newest alert by ResponseDateTime sets the active version, whatever the arrival order."""

    def test_older_alert_is_history_only(self, engine: Engine) -> None:
        assert _record(engine, _facts(2, "02", at_minutes=10)).applied
        assert not _record(engine, _facts(1, "01", at_minutes=0)).applied
        view = _hub(engine)
        assert view.active_version == "02"
        assert [(e.firmware_version, e.applied) for e in view.history] == [
            ("01", False),
            ("02", True),
        ]

    def test_same_version_reported_again_keeps_its_change_time(self, engine: Engine) -> None:
        _record(engine, _facts(1, "02", at_minutes=0))
        _record(engine, _facts(2, "02", at_minutes=30))
        view = _hub(engine)
        assert view.changed_at == T0
        assert view.latest_alert_at == T0 + timedelta(minutes=30)

    def test_an_older_alert_after_a_repeat_is_still_older(self, engine: Engine) -> None:
        _record(engine, _facts(1, "02", at_minutes=0))
        _record(engine, _facts(2, "02", at_minutes=30))
        assert not _record(engine, _facts(3, "01", at_minutes=15)).applied
        assert _hub(engine).active_version == "02"

    def test_rollback_to_an_earlier_version_is_a_change(self, engine: Engine) -> None:
        _record(engine, _facts(1, "02", at_minutes=0))
        _record(engine, _facts(2, "01", at_minutes=30))
        view = _hub(engine)
        assert (view.active_version, view.changed_at) == ("01", T0 + timedelta(minutes=30))


class TestVersionUnknown:
    """An N999 makes the version unknown until the inventory says; older alerts cannot undo it."""

    def test_n999_then_fetched_version(self, engine: Engine) -> None:
        _record(engine, _facts(1, "01", at_minutes=0))
        result = _record(engine, _facts(2, None, at_minutes=5, code="N999", mismatch="N64"))
        assert result.lookup_needed
        with engine.connect() as conn:
            assert backoffice.pending_lookups(conn) == [CH]
        assert _hub(engine).active_version is None
        with engine.begin() as conn:
            backoffice.record_fetched_version(conn, CH, FirmwareVersion.parse("02"), NOW)
        view = _hub(engine)
        assert (view.active_version, view.lookup_pending) == ("02", False)
        assert [(e.firmware_version, e.version_source) for e in view.history] == [
            ("01", "alert"),
            ("02", "inventory"),
        ]

    def test_n999_older_than_the_active_version_needs_no_lookup(self, engine: Engine) -> None:
        _record(engine, _facts(1, "02", at_minutes=10))
        late = _record(engine, _facts(2, None, at_minutes=0, code="N999", mismatch="N64"))
        assert not late.lookup_needed
        assert _hub(engine).active_version == "02"


class TestListing:
    """Alerts of every code are listed newest first; non-firmware alerts make no hub."""

    def test_other_codes_are_listed_not_filed(self, engine: Engine) -> None:
        _record(engine, _facts(1, None, code="N12"))
        _record(engine, _facts(2, "01", device=CH2))
        with engine.connect() as conn:
            every = backoffice.list_alerts(conn)
            only = backoffice.list_alerts(conn, alert_code="N12")
            assert backoffice.hub_view(conn, CH) is None
            assert backoffice.alert_counts(conn) == {"N12": 1, "N64": 1}
        assert {a.alert_code for a in every} == {"N12", "N64"}
        assert [a.response_id for a in only] == [_facts(1).response_id]

    def test_rejections_newest_first_and_bounded(self, engine: Engine) -> None:
        with engine.begin() as conn:
            for n in range(3):
                backoffice.record_rejection(
                    conn,
                    status_code=400,
                    reason=f"reason {n}" + "x" * 2000,
                    remote="127.0.0.1",
                    size=n,
                    now=NOW,
                )
        with engine.connect() as conn:
            rows = backoffice.list_rejections(conn, limit=2)
        assert [r.size for r in rows] == [2, 1]
        assert len(rows[0].reason) == 1000


class TestMigration:
    """The back office's own chain builds exactly the tables chfw.supplier.schema declares."""

    def test_upgrade_matches_metadata(self, tmp_path: Path) -> None:
        engine = create_engine_for(f"sqlite:///{tmp_path / 'bo.db'}")
        try:
            migrate.upgrade(engine)
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn,
                    opts={
                        "compare_type": True,
                        "compare_server_default": True,
                        "version_table": migrate.CHAIN.version_table,
                    },
                )
                assert compare_metadata(context, metadata) == []
                names = set(sa.inspect(conn).get_table_names())
        finally:
            engine.dispose()
        assert bo_alerts.metadata is metadata
        assert names == set(metadata.tables) | {"alembic_version_backoffice"}

    def test_dsp_chain_makes_no_back_office(self, tmp_path: Path) -> None:
        engine = create_engine_for(f"sqlite:///{tmp_path / 'dsp.db'}")
        try:
            dsp_migrate.upgrade(engine)
            names = set(sa.inspect(engine).get_table_names())
            assert migrate.current_revision(engine) is None
        finally:
            engine.dispose()
        assert not {n for n in names if n.startswith("bo_")}
        assert "hubs" in names

    def test_downgrade_to_base_removes_them(self, tmp_path: Path) -> None:
        from alembic import command

        engine = create_engine_for(f"sqlite:///{tmp_path / 'bo.db'}")
        try:
            migrate.upgrade(engine)
            config = migrate.CHAIN.alembic_config()
            with engine.connect() as conn:
                config.attributes["connection"] = conn
                command.downgrade(config, "base")
                conn.commit()
            names = set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert names == {"alembic_version_backoffice"}

    def test_adopts_a_database_from_the_combined_chain(self, tmp_path: Path) -> None:
        """A database whose bo_* tables the DSP's chain made before 0006 (no latest_counter)
        is adopted: its rows stay, and latest_counter is filled from the ResponseID."""
        engine = create_engine_for(f"sqlite:///{tmp_path / 'old.db'}")
        try:
            migrate.upgrade(engine, "b0001")
            with engine.begin() as conn:  # back to what revisions 0001-0005 left
                conn.exec_driver_sql("DROP TABLE alembic_version_backoffice")
                conn.exec_driver_sql("DROP TABLE revoked_sessions")
                conn.exec_driver_sql("ALTER TABLE bo_hubs DROP COLUMN latest_counter")
                conn.execute(
                    sa.text(
                        "INSERT INTO bo_hubs (device_id, active_version, changed_at,"
                        " latest_alert_at, latest_response_id, updated_at) VALUES"
                        " ('001DA10000000001', '0102', :t, :t, '90-B3-D5-1F-30-00-00-02:"
                        "00-1D-A1-00-00-00-00-01:42', :t)"
                    ),
                    {"t": "2026-12-01 10:00:00.000000"},
                )
            assert migrate.upgrade(engine) == migrate.head_revision()
            with engine.connect() as conn:
                counter = conn.execute(sa.select(bo_hubs.c.latest_counter)).scalar_one()
                context = MigrationContext.configure(
                    conn, opts={"version_table": migrate.CHAIN.version_table}
                )
                diff = compare_metadata(context, metadata)
        finally:
            engine.dispose()
        assert counter == "42".zfill(20)
        assert diff == []
