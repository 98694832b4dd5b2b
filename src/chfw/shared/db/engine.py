"""Create SQLAlchemy engines tuned for each backend."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from chfw.shared.config import Settings

# Execution option marking a connection read-only (see reading()).
READ_ONLY = "chfw_read_only"

# How long a SQLite statement (or BEGIN) waits for another process's write lock.
BUSY_TIMEOUT_SECONDS = 60.0


def is_sqlite(url: str | sa.URL) -> bool:
    return sa.make_url(url).get_backend_name() == "sqlite"


def display_url(url: str | sa.URL) -> str:
    """The URL without its password: the only form of a database URL chfw prints or logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable database URL>"


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and write-locking transactions.

    SQLite: every transaction starts with ``BEGIN IMMEDIATE`` so that two
    processes (intake and worker) queue on the write lock instead of failing
    with 'database is locked' when a reader tries to upgrade to a writer.
    """
    sa_url = sa.make_url(url)
    # Repositories read ``rowcount`` to tell "inserted" from "already there" after
    # INSERT ... ON CONFLICT DO NOTHING. SQLAlchemy only keeps it for UPDATE/DELETE
    # unless asked; without this it is -1 on PostgreSQL (psycopg) and every
    # duplicate would pass for a fresh insert.
    options = {"preserve_rowcount": True, **kwargs.pop("execution_options", {})}
    kwargs["execution_options"] = options
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.drivername == "sqlite":
            sa_url = sa_url.set(drivername="sqlite+pysqlite")
        engine = sa.create_engine(
            sa_url,
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            **kwargs,
        )
        _tune_sqlite(engine)
        return engine
    if sa_url.drivername in ("postgresql", "postgres"):
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(sa_url, **kwargs)
    if sa_url.drivername == "postgresql+psycopg":
        _binary_lists(engine)
    return engine


def engine_for_settings(settings: Settings, application_name: str = "chfw") -> Engine:
    """The engine a chfw process uses: on PostgreSQL a pool of ``database_pool_size``
    connections (plus ``database_max_overflow`` for bursts), each carrying
    ``application_name`` (``pg_stat_activity`` shows which process holds it) unless the URL
    sets its own."""
    url = sa.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return create_engine_for(settings.database_url)
    connect_args: dict[str, str] = {}
    if "application_name" not in url.query:
        connect_args["application_name"] = application_name[:63]  # NAMEDATALEN - 1
    return create_engine_for(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        connect_args=connect_args,
    )


def _binary_lists(engine: Engine) -> None:
    """Send Python lists to PostgreSQL as binary arrays.

    The batch statements pass one array per column (``unnest``, ``= ANY``);
    psycopg's default text format escapes and quotes every element in
    Python, which cost three times the binary packing (for the intake's
    history insert ~30 -> ~9 µs of client CPU per row).
    """
    from psycopg.types.array import ListBinaryDumper  # only PostgreSQL's processes need it

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        dbapi_connection = connection.connection.driver_connection
        if dbapi_connection.in_transaction:
            return  # begun by the caller, e.g. writing_on_loop()
        if connection.get_execution_options().get(READ_ONLY):
            # Deferred: in WAL mode a reader neither waits for the writer nor blocks it.
            dbapi_connection.execute("BEGIN")
        else:
            begin_immediate(dbapi_connection)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection whose transactions only read (dashboards, metrics, counts, the demo).

    On SQLite they begin DEFERRED instead of taking the write lock, so a page
    or a scrape never queues behind the intake's batch, nor holds up the
    worker while it counts a large outbox. Do not write through it: SQLite
    refuses to turn such a reader into a writer while another writer is busy.
    Elsewhere: an ordinary connection.
    """
    with engine.connect() as conn:
        yield conn.execution_options(**{READ_ONLY: True})


def begin_immediate(
    dbapi_connection: sqlite3.Connection,
    timeout: float = BUSY_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Take SQLite's write lock, polling every few milliseconds while another writer has it.

    SQLite's own busy handler backs off to 100 ms between tries, so a writer
    waiting behind another (the intake behind a worker's settle, or the
    other way round) often slept for tens of milliseconds after the lock
    was free; with several writers taking turns many times a second that
    was idle time on every turn. Here the wait is ours: short sleeps (0.2 ms
    doubling to 2 ms) up to ``timeout``, then the same 'database is locked'
    error SQLite would raise. Statements inside the transaction keep
    SQLite's busy timeout.
    """
    for pause in _lock_waits(dbapi_connection, timeout, clock):
        (sleep or _pause)(pause)


async def begin_immediate_async(
    dbapi_connection: sqlite3.Connection,
    timeout: float = BUSY_TIMEOUT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """:func:`begin_immediate` for an event loop: it waits with ``asyncio.sleep``."""
    for pause in _lock_waits(dbapi_connection, timeout, clock):
        await asyncio.sleep(pause)


def _lock_waits(
    dbapi_connection: sqlite3.Connection, timeout: float, clock: Callable[[], float]
) -> Iterator[float]:
    """Try for the write lock; between tries, yield how long to wait; end once it is taken."""
    deadline = clock() + timeout
    pause = 0.0002
    while not try_begin_immediate(dbapi_connection):
        if clock() >= deadline:
            raise sqlite3.OperationalError("database is locked")
        yield pause
        pause = min(pause * 2, 0.002)


def try_begin_immediate(dbapi_connection: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` if the write lock is free now; False if another writer has it."""
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        dbapi_connection.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        return False
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")


@asynccontextmanager
async def writing_on_loop(engine: Engine) -> AsyncIterator[Connection]:
    """A write transaction for a coroutine to run on the event loop's own thread.

    On SQLite the lock is waited for with ``asyncio.sleep`` (the loop goes on
    meanwhile); once it is ours the transaction runs here and commits at the
    end of the block. Run in a thread instead (``asyncio.to_thread``), the
    transaction held the lock while it waited for the GIL: the loop's thread,
    busy with POSTs, had it. Measured in the delivery worker during a wave,
    its transactions held the write lock twice as long as they ran. Only for
    short transactions with no network round trips, so SQLite only.
    """
    if engine.dialect.name != "sqlite":
        raise ValueError("writing_on_loop is for SQLite; run other databases' work in a thread")
    with engine.connect() as conn:
        driver: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        await begin_immediate_async(driver)
        with conn.begin():
            yield conn


_pause = time.sleep  # what begin_immediate waits with (tests count the waits)
