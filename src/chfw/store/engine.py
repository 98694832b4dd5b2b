"""Create SQLAlchemy engines tuned for each backend."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine


def is_sqlite(url: str | sa.URL) -> bool:
    return sa.make_url(url).get_backend_name() == "sqlite"


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
            sa_url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs
        )
        _tune_sqlite(engine)
        return engine
    if sa_url.drivername in ("postgresql", "postgres"):
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(sa_url, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
