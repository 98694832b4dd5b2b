"""A running `chfw worker` process: an endpoint back after an outage gets its backlog at once.

The worker runs as a real subprocess with a ten-minute initial backoff; the endpoint
answers 503 until every alert has failed once, then 204. The backlog is delivered
before any of its rows' scheduled retries (issue 23, item 3).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.dsp.store.schema import outbox
from tests.cli.test_worker_signals import GRACE_SECONDS, start_worker, stop
from tests.dsp.delivery.helpers import SUPPLIER_A, add_user, alert, enqueue
from tests.dsp.delivery.receiver import Answer, ScriptedReceiver
from tests.dsp.delivery.test_outage import hubs


def wait_for(engine: Engine, condition: sa.ColumnElement[bool], count: int) -> None:
    """Poll until ``count`` outbox rows match (bounded: a hung worker fails the test)."""
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            found = conn.execute(sa.select(sa.func.count()).where(condition)).scalar_one()
        if found >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} outbox rows match {condition}")


class TestEndpointBack:
    def test_backlog_delivered_before_its_backoff(
        self, engine: Engine, database_url: str, tmp_path: Path
    ) -> None:
        receiver = ScriptedReceiver(default=Answer(503)).start()
        try:
            add_user(engine, SUPPLIER_A, receiver.url())
            now = datetime.now(UTC)
            enqueue(engine, [alert(f"R-{n}", hub=ch) for n, ch in enumerate(hubs(5))], now)
            worker = start_worker(
                database_url, tmp_path, retry_initial_seconds="600", retry_max_seconds="3600"
            )
            try:
                wait_for(engine, outbox.c.attempts >= 1, 5)
                with engine.connect() as conn:
                    query = sa.select(outbox.c.response_id, outbox.c.next_attempt_at)
                    scheduled = {r.response_id: r.next_attempt_at for r in conn.execute(query)}
                receiver.default = Answer(204)
                # The endpoint is back; a new alert for it (as in a wave) is the first answer.
                enqueue(engine, [alert("R-new", hub=hubs(6)[5])], datetime.now(UTC))
                wait_for(engine, outbox.c.state == "delivered", 6)
            finally:
                code, output = stop(worker)
        finally:
            receiver.stop()
        assert code == 0, output
        assert "endpoint_back" in output
        with engine.connect() as conn:
            query = sa.select(outbox.c.response_id, outbox.c.delivered_at)
            delivered = {r.response_id: r.delivered_at for r in conn.execute(query)}
        for response_id, was_due in scheduled.items():
            assert delivered[response_id] < was_due, response_id
