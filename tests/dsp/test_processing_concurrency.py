"""Several intake processes at once: batches naming the same CHs never deadlock or double up."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from chfw.core.domain import FirmwareVersion
from chfw.core.duis import bundled_schemas
from chfw.dsp.alerts import AlertBuilder
from chfw.dsp.processing import ActivationService, Status
from chfw.dsp.store.counters import CounterBlock
from chfw.dsp.store.schema import firmware_history
from chfw.dsp.store.schema import outbox as outbox_table
from chfw.exceptions import ConfigError
from chfw.shared.db import engine as store_engine
from chfw.shared.db.engine import create_engine_for
from tests.dsp.test_processing import response
from tests.small_dsp import CH1, CH2, DCC, SIGNER, build_dsp

ROUNDS = 6


def linger_after_locking_hubs(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    """Hold on a moment after taking CH row locks, so two transactions surely overlap."""
    if "FOR UPDATE" in statement and "hubs" in statement:
        time.sleep(0.05)


class TestConcurrentBatches:
    """Two intake processes post the same two CHs in opposite orders, round after round."""

    def test_opposite_orders(self, engine: sa.Engine, database_url: str) -> None:
        build_dsp(engine)
        engines = [create_engine_for(database_url) for _ in range(2)]
        for other in engines:
            event.listen(other, "after_cursor_execute", linger_after_locking_hubs)
        # Blocks of one value: every alert fetches its ResponseID counter while the intake
        # transaction is open (in it on SQLite, in one of its own on PostgreSQL), the most
        # lock-heavy way the counter can be used.
        counters = [CounterBlock(e, block_size=1) for e in engines]
        services = [
            ActivationService(e, AlertBuilder(DCC, SIGNER, bundled_schemas()), c)
            for e, c in zip(engines, counters, strict=True)
        ]
        barrier = threading.Barrier(2)
        statuses: list[Status] = []
        errors: list[BaseException] = []

        def post(index: int) -> None:
            try:
                for r in range(ROUNDS):
                    version = FirmwareVersion.parse(f"0201{r:02X}00")
                    counter = 2 * r + index + 1
                    batch = [response(CH1, counter, v=version), response(CH2, counter, v=version)]
                    barrier.wait(timeout=30)
                    results = services[index].submit(batch[:: 1 - 2 * index], "north")
                    statuses.extend(result.status for result in results)
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        for counter in counters:
            counter.close()
        for other in engines:
            other.dispose()
        with engine.connect() as conn:
            response_ids = conn.execute(sa.select(outbox_table.c.response_id)).scalars().all()
            history = conn.execute(
                sa.select(sa.func.count()).select_from(firmware_history)
            ).scalar_one()
        assert errors == []
        assert statuses == [Status.PROCESSED] * (ROUNDS * 2 * 2)
        assert history == ROUNDS * 2 * 2
        # Each round one of the two posts finds the new version first: CH1 alerts its two
        # suppliers, CH2 its one; the other post finds the same version and sends nothing.
        assert len(response_ids) == len(set(response_ids)) == ROUNDS * 3


class TestOneWriterPerProcess:
    """Threads of one intake process work on one batch at a time on SQLite, each starting
    when the one before commits: none of them polls SQLite's lock."""

    def test_batches_of_one_service_take_turns(
        self, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        build_dsp(engine)
        counter = CounterBlock(engine)
        counter.reserve(100)  # ResponseID counters on hand: no block is fetched mid-test
        service = ActivationService(engine, AlertBuilder(DCC, SIGNER, bundled_schemas()), counter)
        polls: list[str] = []
        real_pause = store_engine._pause

        def counting_pause(seconds: float) -> None:
            polls.append(threading.current_thread().name)
            real_pause(seconds)

        monkeypatch.setattr(store_engine, "_pause", counting_pause)

        def linger_in_batch(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if "FROM hubs" in statement:  # reading the batch's CHs: hold the transaction open
                time.sleep(0.05)

        event.listen(engine, "after_cursor_execute", linger_in_batch)
        # Pooled connections made beforehand: a new SQLite connection's set-up waits
        # for the write lock with SQLite's own handler, which would hide the difference.
        warm = [engine.connect() for _ in range(3)]
        for conn in warm:
            conn.close()
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def post(index: int) -> None:
            try:
                for r in range(3):
                    version = FirmwareVersion.parse(f"0301{r:02X}00")
                    barrier.wait(timeout=30)
                    ch = (CH1, CH2)[index]
                    results = service.submit([response(ch, 10 * r + 1, v=version)], "north")
                    assert results[0].status is Status.PROCESSED
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=post, args=(i,), name=f"post-{i}") for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert [name for name in polls if name.startswith("post-")] == []


class TestBatchesPerProcess:
    """``intake_concurrency``: how many batches one intake process works on at once."""

    @staticmethod
    def peak_overlap(service: ActivationService, threads: int = 3) -> int:
        """Most batches inside the service's processing at one moment, ``threads`` posting."""
        active = peak = 0
        lock = threading.Lock()
        process = service._process

        def tracking(payloads: Any, csp: Any) -> Any:
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            try:
                time.sleep(0.05)  # long enough for every poster to arrive meanwhile
                return process(payloads, csp)
            finally:
                with lock:
                    active -= 1

        service._process = tracking  # type: ignore[method-assign]
        barrier = threading.Barrier(threads)
        errors: list[BaseException] = []

        def post(index: int) -> None:
            try:
                barrier.wait(timeout=30)
                ch = (CH1, CH2)[index % 2]
                results = service.submit([response(ch, 100 + index)], "north")
                assert results[0].status is Status.PROCESSED
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=post, args=(i,)) for i in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=120)
        assert errors == []
        return peak

    def service(self, engine: sa.Engine, **options: Any) -> ActivationService:
        build_dsp(engine)
        counter = CounterBlock(engine)
        counter.reserve(100)
        return ActivationService(
            engine, AlertBuilder(DCC, SIGNER, bundled_schemas()), counter, **options
        )

    def test_one_batch_at_a_time_by_default(self, engine: sa.Engine) -> None:
        service = self.service(engine)
        assert service.concurrent_batches == 1
        assert self.peak_overlap(service) == 1

    def test_more_on_postgresql_when_configured(self, engine: sa.Engine) -> None:
        service = self.service(engine, concurrent_batches=3)
        overlap = self.peak_overlap(service)
        if engine.dialect.name == "sqlite":  # one writer, whatever the setting
            assert (service.concurrent_batches, overlap) == (1, 1)
        else:
            assert service.concurrent_batches == 3
            assert overlap >= 2

    def test_less_than_one_is_a_configuration_error(self, engine: sa.Engine) -> None:
        with pytest.raises(ConfigError, match="intake_concurrency must be at least 1, got 0"):
            ActivationService(
                engine,
                AlertBuilder(DCC, SIGNER, bundled_schemas()),
                CounterBlock(engine),
                concurrent_batches=0,
            )
