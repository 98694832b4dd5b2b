"""An endpoint back after an outage gets its waiting alerts at once, not at each backoff.

Issue 23 item 3: a supplier back after 3 minutes got its last alert 10.5 minutes later.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from sqlalchemy.engine import Engine

from chfw.dsp.delivery.reporting import WorkerStats
from chfw.dsp.delivery.worker import Worker
from chfw.dsp.store import outbox
from chfw.dsp.store.outbox import AttemptResult
from chfw.shared.config import Settings
from tests.dsp.delivery.conftest import FakeClock
from tests.dsp.delivery.helpers import SUPPLIER_A, SUPPLIER_B, add_user, alert, drain, enqueue, row
from tests.dsp.delivery.receiver import Answer, ScriptedReceiver
from tests.dsp.delivery.test_outage import hubs


class TestEndpointBack:
    """The first delivery after failures makes that user's waiting rows due now."""

    def test_a_fresh_worker_sees_the_endpoint_back_and_sends_the_backlog(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        settings = settings.replace(retry_initial_seconds=600, retry_max_seconds=3600)
        add_user(engine, SUPPLIER_A, receiver.url("/a"))
        add_user(engine, SUPPLIER_B, receiver.url("/b"))
        ids = enqueue(engine, [alert(f"A-{n}", hub=ch) for n, ch in enumerate(hubs(6))], clock.now)
        (other,) = enqueue(engine, [alert("B-0", SUPPLIER_B, hubs(1)[0])], clock.now)
        receiver.default = Answer(503)
        with engine.begin() as conn:  # B's alert waits for a later try of its own
            later = clock.now + timedelta(days=1)
            outbox.record_results(
                conn, [AttemptResult(other, "retry", clock.now, 503, "503", 1.0, later)]
            )
        first = drain(engine, settings, clock)
        assert first.retried == 6
        scheduled = {i: row(engine, i).row.next_attempt_at for i in ids}
        assert len(set(scheduled.values())) > 1  # jittered, up to ten minutes apart

        receiver.default = Answer(204)
        clock.now = min(scheduled.values())  # the earliest retry falls due; the rest wait
        stats = drain(engine, settings, clock)  # a fresh worker: it knows only the database

        assert stats.delivered == 6
        for outbox_id, was_due in scheduled.items():
            detail = row(engine, outbox_id).row
            assert detail.state == "delivered"
            assert detail.delivered_at is not None
            assert detail.delivered_at <= was_due
        assert row(engine, other).row.state == "pending"  # another user's rows are not touched

    def test_a_new_alert_answered_after_failures_counts_too(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        """The worker that saw the endpoint fail also takes a first-time delivery as "back"."""
        settings = settings.replace(retry_initial_seconds=600, retry_max_seconds=3600)
        add_user(engine, SUPPLIER_A, receiver.url("/a"))
        ids = enqueue(engine, [alert(f"A-{n}", hub=ch) for n, ch in enumerate(hubs(3))], clock.now)
        receiver.default = Answer(503)

        def back_with_a_new_alert() -> None:
            receiver.default = Answer(204)
            enqueue(engine, [alert("A-new", hub=hubs(4)[3])], clock.now)

        async def run() -> tuple[WorkerStats, WorkerStats]:
            async with Worker(engine, settings, clock=clock, rng=random.Random(7)) as worker:
                failed = await worker.run_until_idle()
                back_with_a_new_alert()
                return failed, await worker.run_until_idle()

        failed, back = asyncio.run(run())
        assert (failed.retried, failed.delivered) == (3, 0)
        assert back.delivered == 4
        assert all(row(engine, i).row.state == "delivered" for i in ids)
