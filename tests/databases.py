"""Throwaway test databases on SQLite and PostgreSQL, each built from a once-migrated template.

SQLite: the template is a migrated file; a test gets a copy. PostgreSQL (a
server named by ``CHFW_TEST_PG_URL``, e.g. the one ``scripts/pg.sh`` starts):
the template is a migrated database; a test gets ``CREATE DATABASE ...
TEMPLATE`` of it, dropped afterwards. Either way every test starts from the
schema ``chfw db upgrade`` builds, isolated from every other test.

A test database carries both products' schemas, each from its own chain (the
DSP's and the back office's, with their own version tables), so one fixture
serves the tests of either side.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.dsp.store import migrate as dsp_migrate
from chfw.shared.db.engine import create_engine_for
from chfw.supplier import migrate as backoffice_migrate

PG_URL_ENV = "CHFW_TEST_PG_URL"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def pg_server_url() -> str | None:
    """The PostgreSQL server tests may use, or None (PostgreSQL tests are then left out)."""
    return os.environ.get(PG_URL_ENV) or None


def backends() -> list[str]:
    """The backends every database test runs on: SQLite always, PostgreSQL when configured."""
    return [SQLITE, POSTGRESQL] if pg_server_url() else [SQLITE]


def upgrade(url_or_engine: str | Engine) -> None:
    """Both chains to head: the DSP's and the back office's."""
    dsp_migrate.upgrade(url_or_engine)
    backoffice_migrate.upgrade(url_or_engine)


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
    """Creates and drops databases on one PostgreSQL server (a test cluster: trust auth).

    Cloning and dropping take tens of milliseconds each, per test. A helper
    thread does both off the tests' path: it keeps ``ahead`` clones of the
    template ready and drops used databases, while the tests run.
    """

    def __init__(self, server_url: str, ahead: int = 2) -> None:
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
        self.ahead = ahead
        self._ready: queue.Queue[str] = queue.Queue()
        self._chores: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._helper: threading.Thread | None = None
        self._failure: BaseException | None = None

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

    def _clone(self) -> str:
        """FILE_COPY clones a small template several times faster than the default WAL_LOG."""
        name = f"chfw_t_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}" STRATEGY FILE_COPY')
        return name

    def create(self, *, migrated: bool) -> str:
        """A fresh database, cloned from the template or empty; its name."""
        if not migrated:
            name = f"chfw_t_{uuid.uuid4().hex[:12]}"
            self._execute(f'CREATE DATABASE "{name}"')
            return name
        if self.template is None:
            self.create_template()
            self._start_helper()
        if self._failure is not None:
            raise RuntimeError("preparing test databases failed") from self._failure
        try:
            name = self._ready.get_nowait()
        except queue.Empty:
            name = self._clone()
        self._chores.put(lambda: self._ready.put(self._clone()))
        return name

    def drop(self, name: str) -> None:
        """Drop a database (soon, in the helper thread), ending any session left open on it."""
        if self._helper is None:
            self._drop_now(name)
        else:
            self._chores.put(lambda: self._drop_now(name))

    def _drop_now(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _start_helper(self) -> None:
        for _ in range(self.ahead):
            self._chores.put(lambda: self._ready.put(self._clone()))
        self._helper = threading.Thread(target=self._run_chores, name="pg-test-dbs", daemon=True)
        self._helper.start()

    def _run_chores(self) -> None:
        while (chore := self._chores.get()) is not None:
            try:
                chore()
            except BaseException as exc:  # reported by the next create()
                self._failure = exc

    def close(self) -> None:
        """Finish pending drops, then drop the unused clones and the template."""
        if self._helper is not None:
            self._chores.put(None)
            self._helper.join()
            self._helper = None
        while not self._ready.empty():
            self._drop_now(self._ready.get_nowait())
        if self.template is not None:
            self._drop_now(self.template)
            self.template = None
        self.admin.dispose()
