"""Counters: blocks of never-repeating values, across blocks, threads and engines."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.dsp.store import counters
from chfw.dsp.store.counters import CounterBlock
from chfw.exceptions import InvalidValueError
from chfw.shared.db.engine import create_engine_for


class TestAllocate:
    """allocate() moves the counter row forward by the block size."""

    def test_first_block_starts_at_one(self, engine: Engine) -> None:
        with engine.begin() as conn:
            assert counters.peek(conn, "x") == 1
            first = counters.allocate(conn, "x", 3)
            second = counters.allocate(conn, "x", 2)
            assert counters.peek(conn, "x") == 6
        assert list(first) == [1, 2, 3]
        assert list(second) == [4, 5]

    def test_counters_are_independent(self, engine: Engine) -> None:
        with engine.begin() as conn:
            counters.allocate(conn, "a", 10)
            assert list(counters.allocate(conn, "b", 1)) == [1]

    def test_rolled_back_allocation_is_not_kept(self, engine: Engine) -> None:
        conn = engine.connect()
        transaction = conn.begin()
        counters.allocate(conn, "x", 5)
        transaction.rollback()
        conn.close()
        with engine.begin() as conn:
            assert list(counters.allocate(conn, "x", 1)) == [1]

    def test_empty_block_refused(self, engine: Engine) -> None:
        with engine.begin() as conn, pytest.raises(InvalidValueError):
            counters.allocate(conn, "x", 0)


class TestCounterBlock:
    """CounterBlock hands out values that never repeat, whoever asks."""

    def test_values_cross_blocks_without_repeating(self, engine: Engine) -> None:
        block = CounterBlock(engine, "rid", block_size=3)
        values = [block.next() for _ in range(10)]
        block.close()
        assert len(set(values)) == 10
        assert min(values) == 1

    def test_take_larger_than_a_block(self, engine: Engine) -> None:
        block = CounterBlock(engine, "rid", block_size=2)
        first = block.take(5)
        assert len(set(first)) == 5
        assert block.next() not in first
        block.close()

    def test_reserve_fills_ahead(self, engine: Engine) -> None:
        block = CounterBlock(engine, "rid", block_size=4, low_water=0)
        assert block.available == 0
        block.reserve(2)
        assert block.available == 4
        block.take(3)
        assert block.available == 1
        block.reserve(1)
        assert block.available == 1
        block.close()

    def test_refills_in_the_background_below_low_water(self, engine: Engine) -> None:
        block = CounterBlock(engine, "rid", block_size=10, low_water=5)
        taken = block.take(6)  # leaves 4 < 5: a refill starts
        block.settle()
        assert block.last_error is None
        assert block.available == 14
        rest = block.take(14)
        block.close()
        assert len(set(taken + rest)) == 20

    def test_two_blocks_on_one_counter_never_overlap(self, engine: Engine) -> None:
        one, two = CounterBlock(engine, "rid", 5), CounterBlock(engine, "rid", 5)
        values = [block.next() for _ in range(12) for block in (one, two)]
        one.close()
        two.close()
        assert len(values) == len(set(values)) == 24

    def test_threads_and_engines(self, engine: Engine, database_url: str) -> None:
        """Eight threads over two engines (two 'processes'): no value handed out twice."""
        engines = [engine, create_engine_for(database_url)]
        blocks = [CounterBlock(eng, "rid", block_size=7) for eng in engines]
        seen: list[int] = []
        lock = threading.Lock()

        def work(block: CounterBlock) -> None:
            mine = [block.next() for _ in range(100)]
            with lock:
                seen.extend(mine)

        threads = [threading.Thread(target=work, args=(blocks[i % 2],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for block in blocks:
            block.close()
        engines[1].dispose()
        assert len(seen) == 800
        assert len(set(seen)) == 800

    def test_bad_arguments(self, engine: Engine) -> None:
        with pytest.raises(InvalidValueError):
            CounterBlock(engine, block_size=0)
        block = CounterBlock(engine)
        with pytest.raises(InvalidValueError):
            block.take(-1)
        assert block.take(0) == []
        block.close()


class TestInsideTransactions:
    """Used inside a write transaction (as the intake does), it neither blocks nor repeats."""

    @pytest.mark.timeout(30)  # a regression would wait out the 60 s busy timeout
    def test_committed_uses_are_unique_across_rollbacks_and_engines(
        self, engine: Engine, database_url: str
    ) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE used (value INTEGER PRIMARY KEY)"))
        other_engine = create_engine_for(database_url)
        blocks = [
            CounterBlock(engine, "rid", block_size=5),
            CounterBlock(other_engine, "rid", block_size=5),
        ]
        committed = 0
        for round_ in range(12):
            block = blocks[round_ % 2]
            values: list[int] = []
            try:
                with block.engine.begin() as conn:
                    conn.execute(
                        sa.text("INSERT INTO counters VALUES ('other', 0) ON CONFLICT DO NOTHING")
                    )  # hold the write lock
                    values = block.take(7, conn) + block.take(4, conn)
                    conn.execute(
                        sa.text("INSERT INTO used (value) VALUES (:v)"),
                        [{"v": value} for value in values],
                    )
                    if round_ % 3 == 2:
                        raise LookupError("roll this one back")
                committed += len(values)
            except LookupError:
                pass
        for block in blocks:
            block.close()
        other_engine.dispose()
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM used")).scalar_one()
        # The primary key would have refused a repeated value inside a committed transaction.
        assert stored == committed == 8 * 11

    def test_on_postgresql_a_block_is_committed_at_once_even_inside_a_transaction(
        self, pg_database_url: str
    ) -> None:
        # The counter row must not stay locked for the caller's transaction: another
        # process's refill would queue behind a whole intake batch.
        engine = create_engine_for(pg_database_url)
        other = create_engine_for(pg_database_url)
        block = CounterBlock(engine, "rid", block_size=5)
        try:
            with engine.connect() as conn:
                caller = conn.begin()
                conn.execute(sa.text("SELECT 1"))
                values = block.take(3, conn)
                with other.begin() as other_conn:
                    other_conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
                    later = counters.allocate(other_conn, "rid", 1)
                assert later.start > max(values)
                caller.rollback()
            # The block outlives the rollback: its values are never handed out again.
            with engine.connect() as conn:
                assert counters.peek(conn, "rid") > max(values)
            assert min(block.take(2)) > max(values)
        finally:
            block.close()
            engine.dispose()
            other.dispose()
