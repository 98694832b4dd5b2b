"""Throwaway test databases on SQLite and PostgreSQL, each built from a once-migrated template.

SQLite: the template is a migrated file; a test gets a copy. PostgreSQL (a
server named by ``CHFW_TEST_PG_URL``, e.g. the one ``scripts/pg.sh`` starts):
the template is a migrated database; a test gets ``CREATE DATABASE ...
TEMPLATE`` of it, dropped afterwards. Either way every test starts from the
schema ``chfw db upgrade`` builds, isolated from every other test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.store.engine import create_engine_for
from chfw.store.migrate import upgrade

PG_URL_ENV = "CHFW_TEST_PG_URL"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def pg_server_url() -> str | None:
    """The PostgreSQL server tests may use, or None (PostgreSQL tests are then left out)."""
    return os.environ.get(PG_URL_ENV) or None


def backends() -> list[str]:
    """The backends every database test runs on: SQLite always, PostgreSQL when configured."""
    return [SQLITE, POSTGRESQL] if pg_server_url() else [SQLITE]


def migrate_sqlite_template(path: Path) -> Path:
    """A SQLite file at ``path`` migrated by chfw's own migrations."""
    engine = create_engine_for(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


def copy_sqlite(template: Path, path: Path) -> str:
    """A copy of the template at ``path``; returns its URL."""
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


class PgServer:
    """Creates and drops databases on one PostgreSQL server (a test cluster: trust auth)."""

    def __init__(self, server_url: str) -> None:
        self.url = sa.make_url(server_url)
        if self.url.get_backend_name() != POSTGRESQL:
            raise ValueError(f"{PG_URL_ENV}={server_url!r} is not a postgresql:// URL")
        if self.url.drivername in (POSTGRESQL, "postgres"):
            self.url = self.url.set(drivername="postgresql+psycopg")
        # CREATE/DROP DATABASE cannot run in a transaction: autocommit, no pool to hold on.
        self.admin: Engine = sa.create_engine(
            self.url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
        )
        self.template: str | None = None

    def url_of(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(sql)

    def create_template(self) -> str:
        """A database migrated to head that test databases are cloned from; its name."""
        name = f"chfw_tpl_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE DATABASE "{name}"')
        upgrade(self.url_of(name))  # disposes its engine: a template must have no sessions
        self.template = name
        return name

    def create(self, *, migrated: bool) -> str:
        """A fresh database, cloned from the template or empty; its name.

        FILE_COPY clones a small template several times faster than the
        default WAL_LOG strategy (fsync is off on a test cluster anyway).
        """
        name = f"chfw_t_{uuid.uuid4().hex[:12]}"
        if migrated:
            if self.template is None:
                self.create_template()
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}" STRATEGY FILE_COPY')
        else:
            self._execute(f'CREATE DATABASE "{name}"')
        return name

    def drop(self, name: str) -> None:
        """Drop a database, ending any session a test left open on it."""
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.template is not None:
            self.drop(self.template)
            self.template = None
        self.admin.dispose()
