"""Migrations: the shipped revisions build exactly the schema chfw.dsp.store.schema declares."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from chfw.dsp.store import migrate
from chfw.dsp.store.schema import metadata
from chfw.shared.db.engine import create_engine_for


class TestUpgrade:
    """upgrade() on an empty database (each backend) and again on a migrated one."""

    def test_fresh_database_matches_schema(self, empty_database_url: str) -> None:
        engine = create_engine_for(empty_database_url)
        try:
            assert migrate.current_revision(engine) is None
            assert migrate.upgrade(engine) == migrate.head_revision()
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={"compare_type": True, "compare_server_default": True}
                )
                assert compare_metadata(context, metadata) == []
        finally:
            engine.dispose()

    def test_every_table_is_created(self, empty_database_url: str) -> None:
        migrate.upgrade(empty_database_url)
        engine = create_engine_for(empty_database_url)
        try:
            names = set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert set(metadata.tables) <= names
        assert "alembic_version" in names

    def test_second_upgrade_is_a_no_op(self, empty_database_url: str) -> None:
        engine = create_engine_for(empty_database_url)
        try:
            first = migrate.upgrade(engine)
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO counters (name, next_value) VALUES ('x', 7)"))
            second = migrate.upgrade(engine)
            with engine.connect() as conn:
                kept = conn.execute(sa.text("SELECT next_value FROM counters")).scalar_one()
        finally:
            engine.dispose()
        assert first == second == migrate.head_revision()
        assert kept == 7

    def test_upgrade_by_url_leaves_no_engine_open(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'by-url.db'}"
        assert migrate.upgrade(url) == migrate.head_revision()
        assert (tmp_path / "by-url.db").stat().st_size > 0


class TestScriptLocation:
    """The migrations ship inside the package, so no alembic.ini is needed."""

    def test_config_points_into_the_package(self) -> None:
        location = Path(migrate.alembic_config().get_main_option("script_location") or "")
        assert location == migrate.MIGRATIONS
        assert (location / "env.py").is_file()
        assert (location / "versions" / "0001_initial.py").is_file()

    def test_percent_in_url_survives_config_interpolation(self) -> None:
        url = "postgresql://chfw:p%40ss@db.example/chfw"
        assert migrate.alembic_config(url).get_main_option("sqlalchemy.url") == url


class TestInFlightMigration:
    """0004: rows keep their in-flight limit; new users without one get the setting's."""

    def test_existing_limit_kept_new_rows_unset(self, empty_database_url: str) -> None:
        engine = create_engine_for(empty_database_url)
        insert = sa.text(
            "INSERT INTO service_users (user_id, name, roles, duis_version, created_at, "
            "updated_at) VALUES (:id, 'x', 'IS', '5.1', :at, :at)"
        )
        at = "2026-11-25 12:00:00"
        try:
            assert migrate.upgrade(engine, "0003") == "0003"
            with engine.begin() as conn:
                conn.execute(insert, {"id": "90B3D51F30010001", "at": at})
            migrate.upgrade(engine)
            with engine.begin() as conn:
                conn.execute(insert, {"id": "90B3D51F30010002", "at": at})
                limits = dict(
                    conn.execute(sa.text("SELECT user_id, max_in_flight FROM service_users")).all()
                )
        finally:
            engine.dispose()
        assert limits == {"90B3D51F30010001": 8, "90B3D51F30010002": None}
