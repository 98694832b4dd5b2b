"""SQLite engines: each transaction takes the write lock at BEGIN, waiting in short steps."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from chfw.shared.db import engine as store_engine
from chfw.shared.db.engine import (
    BUSY_TIMEOUT_SECONDS,
    begin_immediate,
    begin_immediate_async,
    create_engine_for,
    reading,
    writing_on_loop,
)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    return conn


def _busy_timeout(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA busy_timeout").fetchone()[0])


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class TestBeginImmediate:
    def test_waits_for_another_writer_then_takes_the_lock(self, tmp_path: Path) -> None:
        holder, waiter = _connect(tmp_path / "db"), _connect(tmp_path / "db")
        holder.execute("BEGIN IMMEDIATE")
        tries = 0

        def sleep(seconds: float) -> None:
            nonlocal tries
            tries += 1
            if tries == 3:  # the other writer commits while we wait
                holder.execute("INSERT INTO t VALUES (1)")
                holder.execute("COMMIT")

        begin_immediate(waiter, sleep=sleep)
        assert waiter.in_transaction
        waiter.execute("INSERT INTO t VALUES (2)")
        waiter.execute("COMMIT")
        assert tries == 3
        assert [r[0] for r in waiter.execute("SELECT x FROM t ORDER BY x")] == [1, 2]
        # Statements inside transactions keep SQLite's own busy timeout.
        assert _busy_timeout(waiter) == int(BUSY_TIMEOUT_SECONDS * 1000)

    def test_gives_up_after_the_timeout_as_sqlite_would(self, tmp_path: Path) -> None:
        holder, waiter = _connect(tmp_path / "db"), _connect(tmp_path / "db")
        holder.execute("BEGIN IMMEDIATE")
        fake = FakeTime()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            begin_immediate(waiter, timeout=1.0, sleep=fake.sleep, clock=fake.clock)
        assert not waiter.in_transaction
        assert fake.now >= 1.0
        # Short steps: 0.2 ms doubling, never more than 2 ms.
        assert fake.sleeps[0] == pytest.approx(0.0002)
        assert max(fake.sleeps) == pytest.approx(0.002)
        assert _busy_timeout(waiter) == int(BUSY_TIMEOUT_SECONDS * 1000)
        holder.execute("ROLLBACK")

    def test_other_errors_are_not_retried(self, tmp_path: Path) -> None:
        conn = _connect(tmp_path / "db")
        conn.execute("BEGIN")
        fake = FakeTime()
        with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
            begin_immediate(conn, sleep=fake.sleep, clock=fake.clock)
        assert fake.sleeps == []


class TestEngine:
    def test_two_engines_take_turns_without_database_locked_errors(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'db'}"
        engines = [create_engine_for(url) for _ in range(2)]
        with engines[0].begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        errors: list[BaseException] = []

        def write(engine: sa.Engine, base: int) -> None:
            try:
                for n in range(200):
                    with engine.begin() as conn:
                        conn.exec_driver_sql("INSERT INTO t VALUES (?)", (base + n,))
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=write, args=(engine, 1000 * i))
            for i, engine in enumerate(engines)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with engines[0].connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 400
        for engine in engines:
            engine.dispose()


class Waited(Exception):
    """Raised by a stand-in pause: the connection had to wait for the write lock."""


def _no_waiting(_seconds: float) -> None:
    raise Waited


class TestReading:
    def test_a_reader_neither_waits_for_nor_blocks_the_writer(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(store_engine, "_pause", _no_waiting)
        engine = create_engine_for(database_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE reading_t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO reading_t VALUES (1)")
        with engine.begin() as writer:  # on SQLite: holds the write lock
            writer.exec_driver_sql("INSERT INTO reading_t VALUES (2)")
            with reading(engine) as reader:
                count = "SELECT count(*) FROM reading_t"
                assert reader.exec_driver_sql(count).scalar() == 1  # the committed state
                reader.rollback()
        with reading(engine) as reader:
            assert reader.exec_driver_sql("SELECT count(*) FROM reading_t").scalar() == 2
        engine.dispose()

    def test_an_ordinary_connection_waits_for_the_writer(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(store_engine, "_pause", _no_waiting)
        engine = create_engine_for(f"sqlite:///{tmp_path / 'db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        holder = _connect(tmp_path / "db")
        holder.execute("BEGIN IMMEDIATE")
        with engine.connect() as conn, pytest.raises(Waited):
            conn.exec_driver_sql("SELECT count(*) FROM t")
        holder.execute("ROLLBACK")
        engine.dispose()


class TestWritingOnLoop:
    """A coroutine's SQLite write transaction: waits for the lock without blocking the loop,
    then runs on the loop's own thread."""

    def test_waits_for_another_writer_while_the_loop_runs_on(self, tmp_path: Path) -> None:
        engine = create_engine_for(f"sqlite:///{tmp_path / 'db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        holder = _connect(tmp_path / "db")
        holder.execute("BEGIN IMMEDIATE")
        events: list[str] = []
        threads: set[int] = set()

        async def other_writer_commits_later() -> None:
            for _ in range(5):
                events.append("tick")  # the loop is not blocked by the waiting writer
                await asyncio.sleep(0.01)
            holder.execute("INSERT INTO t VALUES (1)")
            holder.execute("COMMIT")
            events.append("holder committed")

        async def write() -> None:
            async with writing_on_loop(engine) as conn:
                threads.add(threading.get_ident())
                events.append("writing")
                conn.exec_driver_sql("INSERT INTO t VALUES (2)")

        async def main() -> None:
            await asyncio.gather(write(), other_writer_commits_later())

        asyncio.run(main())
        assert events == ["tick"] * 5 + ["holder committed", "writing"]
        assert threads == {threading.get_ident()}
        with engine.connect() as conn:
            assert [r[0] for r in conn.exec_driver_sql("SELECT x FROM t ORDER BY x")] == [1, 2]
        holder.close()
        engine.dispose()

    def test_an_error_rolls_back_and_frees_the_lock(self, tmp_path: Path) -> None:
        engine = create_engine_for(f"sqlite:///{tmp_path / 'db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")

        async def failing() -> None:
            async with writing_on_loop(engine) as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            asyncio.run(failing())
        other = _connect(tmp_path / "db")
        assert store_engine.try_begin_immediate(other)  # the lock is free
        assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        other.execute("ROLLBACK")
        other.close()
        engine.dispose()

    def test_gives_up_at_the_timeout(self, tmp_path: Path) -> None:
        holder = _connect(tmp_path / "db")
        waiter = _connect(tmp_path / "db")
        holder.execute("BEGIN IMMEDIATE")
        fake = FakeTime()

        async def wait() -> None:
            await begin_immediate_async(waiter, timeout=0.0, clock=fake.clock)

        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            asyncio.run(wait())
        assert not waiter.in_transaction
        assert _busy_timeout(waiter) == int(BUSY_TIMEOUT_SECONDS * 1000)
        holder.execute("ROLLBACK")

    def test_only_for_sqlite(self) -> None:
        engine = create_engine_for("postgresql+psycopg://nobody@127.0.0.1:9/none")

        async def write() -> None:
            async with writing_on_loop(engine):
                pass

        with pytest.raises(ValueError, match="SQLite"):
            asyncio.run(write())
        engine.dispose()
