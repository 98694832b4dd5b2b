"""Suspension of a Service User whose endpoint refuses everything (issue 23, item 4)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from chfw.dsp.store import outbox, suspension, users
from chfw.shared.config import Settings
from tests.dsp.delivery.conftest import FakeClock
from tests.dsp.delivery.helpers import SUPPLIER_A, SUPPLIER_B, add_user, alert, drain, enqueue
from tests.dsp.delivery.receiver import Answer, ScriptedReceiver
from tests.dsp.delivery.test_outage import hubs


def user(engine: Engine, who: object = SUPPLIER_A) -> users.ServiceUser:
    with engine.connect() as conn:
        found = users.get_user(conn, who)  # type: ignore[arg-type]
    assert found is not None
    return found


class TestRunOfRefusals:
    def test_suspended_at_the_threshold_and_held(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        settings = settings.replace(suspend_after_refusals=3)
        add_user(engine, SUPPLIER_A, receiver.url("/a"), max_in_flight=1)
        add_user(engine, SUPPLIER_B, receiver.url("/b"))
        enqueue(engine, [alert(f"A-{n}", hub=ch) for n, ch in enumerate(hubs(10))], clock.now)
        enqueue(engine, [alert("B-0", SUPPLIER_B)], clock.now)
        receiver.default = Answer(400)
        receiver.script(204, match=b">B-")
        stats = drain(engine, settings.replace(worker_batch_size=2), clock)

        suspended = user(engine)
        assert suspended.suspended
        assert suspended.suspended_reason is not None
        assert "3 permanent refusals in a row" in suspended.suspended_reason
        assert stats.rejected == len([r for r in receiver.received if r.path == "/a"])
        assert stats.rejected < 10
        with engine.connect() as conn:
            rows = outbox.list_rows(conn, user_id=SUPPLIER_A.hex, limit=100)
        assert sum(r.state == "pending" for r in rows) == 10 - stats.rejected
        assert not user(engine, SUPPLIER_B).suspended  # B is delivered as usual
        assert [r.path for r in receiver.received].count("/b") == 1

        clock.advance(3600 * 2)  # held rows come back into view: held again, not sent
        again = drain(engine, settings, clock)
        assert again.claimed == 0
        assert len([r for r in receiver.received if r.path == "/a"]) == stats.rejected

        with engine.begin() as conn:
            done = suspension.resume(conn, SUPPLIER_A, "operator", clock.now)
        assert (done.was_suspended, done.replayed) == (True, stats.rejected)
        receiver.default = Answer(204)
        assert drain(engine, settings, clock).delivered == 10
        assert not user(engine).suspended
        assert user(engine).refusals_in_a_row == 0

    def test_a_2xx_between_refusals_restarts_the_run(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        settings = settings.replace(suspend_after_refusals=3)
        add_user(engine, SUPPLIER_A, receiver.url("/a"), max_in_flight=1)
        answers = [400, 400, 204, 400, 400, 204]
        for n, status in enumerate(answers):
            receiver.script(status, match=f">A-{n}<".encode())
        enqueue(engine, [alert(f"A-{n}", hub=hubs(1)[0]) for n in range(6)], clock.now)
        stats = drain(engine, settings.replace(worker_batch_size=1), clock)
        assert (stats.rejected, stats.delivered) == (4, 2)
        assert not user(engine).suspended
        assert user(engine).refusals_in_a_row == 0

    def test_zero_never_suspends(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url("/a"))
        receiver.default = Answer(400)
        enqueue(engine, [alert(f"A-{n}", hub=ch) for n, ch in enumerate(hubs(5))], clock.now)
        stats = drain(engine, settings.replace(suspend_after_refusals=0), clock)
        assert stats.rejected == 5
        assert not user(engine).suspended
        assert user(engine).refusals_in_a_row == 5
