"""Group commit: the writer batches what queued, isolates failures; the loop batcher coalesces."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy.engine import Engine

from chfw.shared.db.engine import create_engine_for
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import AlertReceiver, Checked, ReceiverConfig, Refused
from chfw.supplier.writer import LoopBatcher, RecordWriter, Written
from tests.supplier.helpers import Dsp, Served, count_rows

AT = datetime(2026, 3, 1, tzinfo=UTC)


def _item(reason: str) -> Refused:
    return Refused(400, reason, AT, None, size=1)


class FakeReceiver:
    """Records reasons per transaction; the first transaction can be held, a reason can fail."""

    def __init__(self, poison: str | None = None) -> None:
        self.poison = poison
        self.transactions: list[list[str]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.holding = threading.Event()
        self.engine = self

    @contextmanager
    def begin(self) -> Iterator[None]:
        self.holding.set()
        self.hold.wait(10)
        yield

    def record_many(self, conn: object, items: Sequence[Checked]) -> list[None]:
        reasons = [cast(Refused, item).reason for item in items]
        if self.poison in reasons:
            raise RuntimeError(f"cannot write {self.poison}")
        self.transactions.append(reasons)
        return [None] * len(items)


def _writer(fake: FakeReceiver, **options: Any) -> RecordWriter:
    return RecordWriter(cast(AlertReceiver, fake), **options)


class TestRecordWriter:
    """Whatever queues while a transaction runs goes into the next one, one result per item."""

    def test_queued_work_shares_the_next_transaction(self) -> None:
        fake = FakeReceiver()
        fake.hold.clear()
        writer = _writer(fake)
        first = writer.submit([_item("a")])
        assert fake.holding.wait(10)  # the writer is inside the first transaction
        later = [writer.submit([_item(r)]) for r in ("b", "c")] + [
            writer.submit([_item("d"), _item("e")])
        ]
        fake.hold.set()
        assert first.result(10) == [None]
        assert [f.result(10) for f in later] == [[None], [None], [None, None]]
        assert fake.transactions == [["a"], ["b", "c", "d", "e"]]
        assert (writer.transactions, writer.recorded) == (2, 5)

    def test_a_failing_item_fails_alone(self) -> None:
        fake = FakeReceiver(poison="bad")
        fake.hold.clear()
        writer = _writer(fake)
        writer.submit([_item("first")])
        assert fake.holding.wait(10)
        batch = writer.submit([_item("ok 1"), _item("bad"), _item("ok 2")])
        fake.hold.set()
        written = batch.result(10)
        assert written[0] is None
        assert isinstance(written[1], RuntimeError)
        assert written[2] is None
        assert fake.transactions[-2:] == [["ok 1"], ["ok 2"]]

    def test_batches_are_bounded(self) -> None:
        fake = FakeReceiver()
        fake.hold.clear()
        writer = _writer(fake, max_batch=2)
        writer.submit([_item("0")])
        assert fake.holding.wait(10)
        futures = [writer.submit([_item(str(n))]) for n in range(1, 6)]
        fake.hold.set()
        for future in futures:
            future.result(10)
        assert [len(t) for t in fake.transactions] == [1, 2, 2, 1]

    def test_thread_ends_when_idle_and_restarts(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from chfw.supplier import writer as module

        monkeypatch.setattr(module, "IDLE_SECONDS", 0.01)
        fake = FakeReceiver()
        writer = _writer(fake)
        assert writer.submit([_item("a")]).result(10) == [None]
        for _ in range(500):
            if not any(t.name == "chfw-receiver-writer" for t in threading.enumerate()):
                break
            threading.Event().wait(0.01)
        assert writer.submit([_item("b")]).result(10) == [None]
        assert fake.transactions == [["a"], ["b"]]


class TestLoopBatcher:
    """Alerts handed over in one turn of the event loop reach the writer as one submission."""

    def test_one_submission_per_loop_turn(self) -> None:
        fake = FakeReceiver()
        writer = _writer(fake)
        batcher = LoopBatcher(writer)

        async def scenario() -> list[Written]:
            waiters = [batcher.record(_item(str(n))) for n in range(5)]  # same turn
            first = await asyncio.gather(*waiters)
            second = await batcher.record(_item("later"))
            return [*first, second]

        assert asyncio.run(scenario()) == [None] * 6
        assert fake.transactions == [["0", "1", "2", "3", "4"], ["later"]]

    def test_failure_reaches_only_its_request(self) -> None:
        batcher = LoopBatcher(_writer(FakeReceiver(poison="bad")))

        async def scenario() -> list[Written]:
            return list(
                await asyncio.gather(batcher.record(_item("ok")), batcher.record(_item("bad")))
            )

        ok, bad = asyncio.run(scenario())
        assert ok is None
        assert isinstance(bad, RuntimeError)


class TestAppRecordingFailure:
    """When the database cannot record, the DSP is told to retry (503), not that it was bad."""

    def test_database_without_schema_answers_503(self, tmp_path: Path, dsp: Dsp) -> None:
        engine = create_engine_for(f"sqlite:///{tmp_path / 'empty.db'}")  # no bo_* tables
        try:
            server = Served(create_receiver_app(ReceiverConfig(trust=dsp.trust), engine)).start()
            try:
                answer = httpx.post(server.url(), content=dsp.n64(), timeout=10)
            finally:
                server.stop()
        finally:
            engine.dispose()
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert "send it again later" in answer.text

    def test_concurrent_posts_share_transactions(
        self, engine: Engine, dsp: Dsp, serve: Callable[..., Served]
    ) -> None:
        server = serve()
        bodies = [dsp.n64() for _ in range(24)]

        async def post_all() -> list[int]:
            async with httpx.AsyncClient(timeout=10) as client:
                answers = await asyncio.gather(
                    *(client.post(server.url(), content=b) for b in bodies)
                )
            return [a.status_code for a in answers]

        assert set(asyncio.run(post_all())) == {204}
        assert count_rows(engine, "bo_alerts") == 24
