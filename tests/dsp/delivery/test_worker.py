"""The worker against a real supplier endpoint on 127.0.0.1: every delivery path of issue 3."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from chfw.dsp.delivery import worker as worker_module
from chfw.dsp.delivery.reporting import WorkerStats
from chfw.dsp.delivery.sender import DeliveryTransport
from chfw.dsp.delivery.worker import Worker
from chfw.dsp.store import outbox
from chfw.dsp.store.schema import audit_log
from chfw.shared.config import Settings
from chfw.shared.tls import TlsConfig
from tests.dsp.delivery.conftest import FakeClock, Pki
from tests.dsp.delivery.helpers import (
    HUB_1,
    HUB_2,
    SUPPLIER_A,
    SUPPLIER_B,
    MockTransport,
    add_user,
    alert,
    document,
    drain,
    enqueue,
    row,
)
from tests.dsp.delivery.receiver import Answer, ScriptedReceiver, free_port
from tests.dsp.store.outbox_helpers import claim_due


def recording_endpoints(order: list[bytes]) -> Callable[[TlsConfig], DeliveryTransport]:
    """Endpoints (any URL) that answer 204 and note each body, in the order POSTed."""

    def factory(_tls: TlsConfig) -> DeliveryTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            order.append(request.content)
            return httpx.Response(204)

        return MockTransport(handler)

    return factory


def deliver_six_on_two_hubs(engine: Engine, settings: Settings, clock: FakeClock) -> None:
    """Six alerts for one user on two CHs, delivered to endpoints that answer 204."""
    add_user(engine, SUPPLIER_A, "https://a.example/duis")
    enqueue(engine, [alert(f"R-{n}", hub=(HUB_1, HUB_2)[n % 2]) for n in range(6)], clock.now)

    def factory(_tls: TlsConfig) -> DeliveryTransport:
        return MockTransport(lambda _request: httpx.Response(204))

    assert drain(engine, settings, clock, transport_factory=factory).delivered == 6


def response_ids(receiver: ScriptedReceiver) -> list[str]:
    """The ResponseIDs the receiver saw, in order of arrival."""
    return [r.body.split(b"<sr:ResponseID>")[1].split(b"<")[0].decode() for r in receiver.received]


class TestDelivered:
    """A 204 marks the row delivered; the endpoint gets the document byte for byte."""

    def test_204_delivers(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)

        stats = drain(engine, settings, clock)

        assert (stats.delivered, stats.retried, stats.dead) == (1, 0, 0)
        (seen,) = receiver.received
        assert seen.method == "POST"
        assert seen.path == "/duis"
        assert seen.body == document("R-1")
        assert seen.headers["content-type"] == "application/xml"
        detail = row(engine, outbox_id)
        assert detail.row.state == "delivered"
        assert detail.row.delivered_at == clock.now
        assert detail.row.attempts == 1
        assert detail.row.lease_until is None
        (attempt,) = detail.attempts
        assert (attempt.outcome, attempt.status_code) == ("delivered", 204)

    def test_delivered_rows_stay_and_are_not_sent_again(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        enqueue(engine, [alert("R-1"), alert("R-2", hub=HUB_2)], clock.now)
        drain(engine, settings, clock)
        clock.advance(3600)
        again = drain(engine, settings, clock)
        assert again.claimed == 0
        assert len(receiver.received) == 2
        with engine.connect() as conn:
            assert outbox.counts(conn)["delivered"] == 2


class TestRejected:
    """A 400 dead-letters the row at once: exactly one POST, no retry."""

    def test_400_is_dead_without_retry(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        receiver.script(Answer(400, b"Signature verification failed"))

        stats = drain(engine, settings, clock)
        clock.advance(7 * 86400)
        later = drain(engine, settings, clock)

        assert (stats.rejected, stats.retried, later.claimed) == (1, 0, 0)
        assert len(receiver.received) == 1
        detail = row(engine, outbox_id)
        assert detail.row.state == "dead"
        assert detail.row.attempts == 1
        assert detail.row.last_error is not None
        assert "400" in detail.row.last_error
        assert "Signature verification failed" in detail.row.last_error
        assert [(a.outcome, a.status_code) for a in detail.attempts] == [("rejected", 400)]


class TestRetried:
    """A 503 is retried later with backoff and then delivered exactly once."""

    def test_503_then_204(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        receiver.script(503)

        first = drain(engine, settings, clock)
        waiting = row(engine, outbox_id).row
        assert (first.retried, first.delivered) == (1, 0)
        assert waiting.state == "pending"
        assert waiting.attempts == 1
        assert waiting.next_attempt_at > clock.now
        assert waiting.last_error is not None
        assert "503" in waiting.last_error

        clock.advance((waiting.next_attempt_at - clock.now).total_seconds())
        second = drain(engine, settings, clock)

        assert second.delivered == 1
        assert [r.status for r in receiver.received] == [503, 204]
        detail = row(engine, outbox_id)
        assert detail.row.state == "delivered"
        assert detail.row.attempts == 2
        assert [a.outcome for a in detail.attempts] == ["retry", "delivered"]

    def test_not_retried_before_it_is_due(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        receiver.script(503)
        drain(engine, settings, clock)
        due = row(engine, outbox_id).row.next_attempt_at
        clock.now = due - timedelta(milliseconds=1)
        assert drain(engine, settings, clock).claimed == 0
        assert len(receiver.received) == 1


class TestEndpointDown:
    """With nothing listening the backlog is kept, counted and rescheduled, then drains."""

    def test_backlog_kept_then_drained(
        self, engine: Engine, settings: Settings, clock: FakeClock
    ) -> None:
        down = ScriptedReceiver(port=free_port())  # not started yet
        add_user(engine, SUPPLIER_A, down.url())
        hubs = [HUB_1, HUB_2]
        ids = enqueue(engine, [alert(f"R-{n}", hub=hubs[n]) for n in range(2)], clock.now)

        for _ in range(3):
            stats = drain(engine, settings, clock)
            assert stats.retried == 2
            clock.advance(settings.retry_max_seconds)
        for outbox_id in ids:
            waiting = row(engine, outbox_id).row
            assert waiting.state == "pending"
            assert waiting.attempts == 3
            assert waiting.next_attempt_at > waiting.created_at
            assert waiting.last_error is not None
            assert "cannot connect" in waiting.last_error

        down.start()
        try:
            stats = drain(engine, settings, clock)
        finally:
            down.stop()
        assert stats.delivered == 2
        assert sorted(response_ids(down)) == ["R-0", "R-1"]
        assert all(row(engine, i).row.attempts == 4 for i in ids)


class TestOrdering:
    """One CH's alerts to one user are delivered in order; nobody else waits."""

    def test_later_alert_waits_for_earlier_retry(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url("/a"))
        add_user(engine, SUPPLIER_B, receiver.url("/b"))
        enqueue(
            engine,
            [
                alert("A-1", SUPPLIER_A, HUB_1),
                alert("A-2", SUPPLIER_A, HUB_1),
                alert("A-3", SUPPLIER_A, HUB_2),  # other CH, same user
                alert("B-1", SUPPLIER_B, HUB_1),  # same CH, other user
            ],
            clock.now,
        )
        receiver.script(503, match=b">A-1<")

        first = drain(engine, settings, clock)

        assert (first.delivered, first.retried) == (2, 1)
        assert sorted(response_ids(receiver)) == ["A-1", "A-3", "B-1"]  # A-2 held back
        clock.advance(settings.retry_initial_seconds)
        second = drain(engine, settings, clock)

        assert second.delivered == 2
        hub_1_to_a = [
            (rid, r.status)
            for rid, r in zip(response_ids(receiver), receiver.received, strict=True)
            if r.path == "/a" and rid != "A-3"
        ]
        assert hub_1_to_a == [("A-1", 503), ("A-1", 204), ("A-2", 204)]

    def test_dead_alert_does_not_block_the_next(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        enqueue(engine, [alert("A-1"), alert("A-2")], clock.now)
        receiver.script(400, match=b">A-1<")
        stats = drain(engine, settings, clock)
        assert (stats.rejected, stats.delivered) == (1, 1)
        assert response_ids(receiver) == ["A-1", "A-2"]


class TestHorizon:
    """The last try is at created_at + horizon; the row goes dead only when that one fails."""

    def test_retries_until_the_horizon_then_dead(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        settings = settings.replace(
            retry_initial_seconds=60,
            retry_max_seconds=600,
            retry_horizon_hours=1,
        )
        add_user(engine, SUPPLIER_A, receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        receiver.default = Answer(503)
        created = clock.now

        totals = WorkerStats()
        for _ in range(100):
            stats = drain(engine, settings, clock)
            totals.retried += stats.retried
            totals.expired += stats.expired
            current = row(engine, outbox_id).row
            if current.state == "dead":
                break
            assert current.next_attempt_at <= created + timedelta(hours=1)
            clock.now = current.next_attempt_at

        detail = row(engine, outbox_id)
        assert detail.row.state == "dead"
        assert totals.expired == 1
        assert totals.retried >= 2
        assert len(receiver.received) == detail.row.attempts == totals.retried + 1
        assert [a.outcome for a in detail.attempts][-1] == "dead"
        assert detail.row.last_error is not None
        assert "retry horizon of 1 h from the alert's creation" in detail.row.last_error
        assert "has passed" in detail.row.last_error
        assert "503" in detail.row.last_error
        # Dead only once the horizon had really passed: the last try was at the deadline.
        assert detail.attempts[-1].attempted_at == created + timedelta(hours=1)


class TestReplay:
    """An operator's replay puts a dead row back in the queue; it is then delivered."""

    def test_dead_replayed_then_delivered(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        receiver.script(400)
        drain(engine, settings, clock)
        assert row(engine, outbox_id).row.state == "dead"

        clock.advance(600)
        with engine.begin() as conn:
            change = outbox.replay(conn, [outbox_id], "operator", clock.now)
        replayed = row(engine, outbox_id).row
        assert change.changed == (outbox_id,)
        assert (replayed.state, replayed.attempts) == ("pending", 1)
        assert replayed.next_attempt_at == clock.now

        stats = drain(engine, settings, clock)
        assert stats.delivered == 1
        assert [r.status for r in receiver.received] == [400, 204]
        assert row(engine, outbox_id).row.state == "delivered"
        with engine.connect() as conn:
            (entry,) = conn.execute(sa.select(audit_log)).all()
        assert (entry.actor, entry.action) == ("operator", "outbox.replay")
        assert entry.detail["ids"] == [outbox_id]


class TestCrashRecovery:
    """A row leased by a worker that died is claimed again once its lease runs out."""

    def test_expired_lease_is_reclaimed(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        with engine.begin() as conn:  # a worker claims it, then crashes before settling
            (claimed,) = claim_due(conn, clock.now, 10, settings.lease_seconds)
        assert claimed.id == outbox_id

        assert drain(engine, settings, clock).claimed == 0  # the lease still holds
        clock.advance(settings.lease_seconds)
        stats = drain(engine, settings, clock)

        assert stats.delivered == 1
        assert len(receiver.received) == 1
        assert row(engine, outbox_id).row.state == "delivered"


def run_worker(engine: Engine, settings: Settings, clock: FakeClock, body: object) -> WorkerStats:
    """Run ``run_forever`` while ``body(worker, stop)`` (a coroutine function) drives it."""

    async def main() -> WorkerStats:
        stop = asyncio.Event()
        async with Worker(engine, settings, clock=clock, rng=random.Random(1)) as worker:
            running = asyncio.create_task(worker.run_forever(stop))
            await body(worker, stop)  # type: ignore[operator]
            return await asyncio.wait_for(running, 10)

    return asyncio.run(main())


class TestRunForever:
    """The long-running loop picks up new rows and stops gracefully."""

    def test_picks_up_rows_written_while_running(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())

        async def body(_worker: Worker, stop: asyncio.Event) -> None:
            await asyncio.sleep(0.05)
            await asyncio.to_thread(enqueue, engine, [alert("LATE")], clock.now)
            for _ in range(500):
                if receiver.received:
                    break
                await asyncio.sleep(0.01)
            stop.set()

        stats = run_worker(engine, settings, clock, body)
        assert stats.delivered == 1
        assert response_ids(receiver) == ["LATE"]

    def test_stop_finishes_in_flight_and_releases_the_rest(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url(), max_in_flight=1)
        ids = enqueue(
            engine, [alert(f"R-{n}", hub=hub) for n, hub in enumerate([HUB_1, HUB_2])], clock.now
        )
        receiver.script(Answer(204, delay=0.3))

        async def body(_worker: Worker, stop: asyncio.Event) -> None:
            await asyncio.to_thread(receiver.arrived.wait, 10)
            stop.set()  # while the first POST is being answered

        stats = run_worker(engine, settings, clock, body)

        assert (stats.delivered, stats.released) == (1, 1)
        states = {i: row(engine, i).row for i in ids}
        delivered = [r for r in states.values() if r.state == "delivered"]
        released = [r for r in states.values() if r.state == "pending"]
        assert len(delivered) == 1
        assert len(released) == 1
        assert released[0].lease_until is None
        assert released[0].attempts == 0


class TestConcurrency:
    """POSTs run concurrently, but never more than the user's max_in_flight at once."""

    def test_bounded_per_endpoint(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url(), max_in_flight=2)
        alerts = [alert(f"R-{n}", hub=type(HUB_1).from_int(n)) for n in range(8)]
        enqueue(engine, alerts, clock.now)
        receiver.default = Answer(204, delay=0.05)

        stats = drain(engine, settings, clock)

        assert stats.delivered == 8
        assert receiver.max_in_flight == 2

    def test_user_without_a_limit_gets_the_deployment_setting(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url(), max_in_flight=None)
        enqueue(engine, [alert(f"R-{n}", hub=type(HUB_1).from_int(n)) for n in range(9)], clock.now)
        receiver.default = Answer(204, delay=0.05)

        stats = drain(engine, settings.replace(delivery_max_in_flight=3), clock)

        assert stats.delivered == 9
        assert receiver.max_in_flight == 3

    def test_connections_are_reused(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url(), max_in_flight=2)
        enqueue(
            engine, [alert(f"R-{n}", hub=type(HUB_1).from_int(n)) for n in range(20)], clock.now
        )
        drain(engine, settings, clock)
        assert len(receiver.received) == 20
        assert len({r.client_port for r in receiver.received}) <= 2


class TestMisconfiguredUsers:
    """Alerts for users that cannot be reached wait, with a message that says why."""

    def test_user_without_endpoint(
        self, engine: Engine, settings: Settings, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, None)
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        assert drain(engine, settings, clock).retried == 1
        error = row(engine, outbox_id).row.last_error
        assert error is not None
        assert "no endpoint URL" in error

    def test_unknown_user(self, engine: Engine, settings: Settings, clock: FakeClock) -> None:
        (outbox_id,) = enqueue(engine, [alert("R-1", SUPPLIER_B)], clock.now)
        assert drain(engine, settings, clock).retried == 1
        error = row(engine, outbox_id).row.last_error
        assert error is not None
        assert "not a registered Service User" in error

    def test_unreadable_ca_bundle(
        self, engine: Engine, settings: Settings, clock: FakeClock, tmp_path: object
    ) -> None:
        add_user(engine, SUPPLIER_A, "https://localhost:1/duis", ca_bundle="/nonexistent/ca.pem")
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        assert drain(engine, settings, clock).retried == 1
        error = row(engine, outbox_id).row.last_error
        assert error is not None
        assert "/nonexistent/ca.pem" in error


class TestMutualTls:
    """Per-user TLS settings reach the endpoint: its CA bundle and our client certificate."""

    def test_delivered_over_mutual_tls(
        self,
        engine: Engine,
        settings: Settings,
        tls_receiver: ScriptedReceiver,
        pki: Pki,
        clock: FakeClock,
    ) -> None:
        add_user(
            engine,
            SUPPLIER_A,
            tls_receiver.url(),
            ca_bundle=str(pki.ca),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
        add_user(engine, SUPPLIER_B, tls_receiver.url(), ca_bundle=str(pki.ca))  # no client cert
        a, b = enqueue(engine, [alert("A-1"), alert("B-1", SUPPLIER_B)], clock.now)

        stats = drain(engine, settings, clock)

        assert (stats.delivered, stats.retried) == (1, 1)
        assert response_ids(tls_receiver) == ["A-1"]
        assert row(engine, a).row.state == "delivered"
        assert row(engine, b).row.state == "pending"


class TestWithMockTransport:
    """Fine-grained cases with a fake transport (tests.dsp.delivery.helpers.MockTransport)."""

    def test_unexpected_error_is_retried_not_lost(
        self, engine: Engine, settings: Settings, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, "https://supplier.example/duis")
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)

        def handler(_request: httpx.Request) -> httpx.Response:
            raise RuntimeError("bug in a transport")

        def factory(_tls: TlsConfig) -> DeliveryTransport:
            return MockTransport(handler)

        with structlog.testing.capture_logs() as logs:
            stats = drain(engine, settings, clock, transport_factory=factory)
        assert stats.retried == 1
        error = row(engine, outbox_id).row.last_error
        assert error is not None
        assert "internal error" in error
        assert "bug in a transport" in error
        (logged,) = [e for e in logs if e["event"] == "delivery_internal_error"]
        assert logged["outbox_id"] == outbox_id
        assert logged["log_level"] == "error"

    def test_each_tls_setup_gets_its_own_client(
        self, engine: Engine, settings: Settings, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, "https://a.example/duis", ca_bundle="/a-ca.pem")
        add_user(engine, SUPPLIER_B, "https://b.example/duis")
        enqueue(
            engine, [alert("A-1"), alert("B-1", SUPPLIER_B), alert("A-2", hub=HUB_2)], clock.now
        )
        made: list[TlsConfig] = []
        hosts: list[str] = []

        def factory(tls: TlsConfig) -> DeliveryTransport:
            made.append(tls)

            def handler(request: httpx.Request) -> httpx.Response:
                hosts.append(request.url.host)
                return httpx.Response(204)

            return MockTransport(handler)

        assert drain(engine, settings, clock, transport_factory=factory).delivered == 3
        assert sorted(t.ca_bundle or "" for t in made) == ["", "/a-ca.pem"]
        assert sorted(hosts) == ["a.example", "a.example", "b.example"]

    @pytest.mark.parametrize("batch_size", [1, 3])
    def test_small_batches_drain_everything(
        self, engine: Engine, settings: Settings, clock: FakeClock, batch_size: int
    ) -> None:
        settings = settings.replace(worker_batch_size=batch_size)
        add_user(engine, SUPPLIER_A, "https://a.example/duis")
        alerts = [alert(f"R-{n}", hub=HUB_1 if n % 2 else HUB_2) for n in range(10)]
        enqueue(engine, alerts, clock.now)
        order: list[bytes] = []
        factory = recording_endpoints(order)

        assert drain(engine, settings, clock, transport_factory=factory).delivered == 10
        for hub in (HUB_1, HUB_2):
            sent = [
                body for body in order if body in {a.document for a in alerts if a.device_id == hub}
            ]
            assert sent == [a.document for a in alerts if a.device_id == hub]


class TestSettleAndClaimTogether:
    """Settling finished attempts and claiming the next rows share one transaction when both
    are due: on SQLite every transaction waits its turn for the one write lock."""

    def test_one_transaction_settles_then_claims_the_next_in_line(
        self, engine: Engine, settings: Settings, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, "https://a.example/duis")
        # One CH, one user: each alert is claimable only once the one before is settled.
        alerts = [alert(f"R-{n}") for n in range(5)]
        enqueue(engine, alerts, clock.now)
        transactions: list[list[str]] = []
        current: dict[int, list[str]] = {}

        def on_begin(conn: sa.Connection) -> None:
            current[id(conn)] = []

        def on_statement(conn: sa.Connection, _cursor: object, statement: str, *_: object) -> None:
            if id(conn) in current:
                current[id(conn)].append(" ".join(statement.split())[:60])

        def on_end(conn: sa.Connection) -> None:
            if id(conn) in current:
                transactions.append(current.pop(id(conn)))

        sa.event.listen(engine, "begin", on_begin)
        sa.event.listen(engine, "after_cursor_execute", on_statement)
        sa.event.listen(engine, "commit", on_end)
        order: list[bytes] = []
        factory = recording_endpoints(order)

        assert drain(engine, settings, clock, transport_factory=factory).delivered == 5
        assert order == [a.document for a in alerts]

        def settles(statements: list[str]) -> bool:
            return any(s.startswith("UPDATE outbox SET state") for s in statements)

        def claims(statements: list[str]) -> bool:
            return any(s.startswith("SELECT outbox.id, outbox.response_id") for s in statements)

        both = [t for t in transactions if settles(t) and claims(t)]
        assert len(both) >= 4  # every alert after the first: settled and its successor claimed
        for statements in both:
            first_settle = next(i for i, s in enumerate(statements) if s.startswith("UPDATE"))
            first_claim = next(i for i, s in enumerate(statements) if s.startswith("SELECT"))
            assert first_settle < first_claim


class TestClaimedOutsideTheLock:
    def test_claimed_rows_become_alerts_after_the_commit(
        self,
        engine: Engine,
        settings: Settings,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # Building ClaimedAlerts is Python work: done while no transaction is open, so
        # that on SQLite the intake can write meanwhile.
        open_now: set[int] = set()
        during: list[bool] = []
        sa.event.listen(engine, "begin", lambda conn: open_now.add(id(conn)))
        sa.event.listen(engine, "commit", lambda conn: open_now.discard(id(conn)))
        sa.event.listen(engine, "rollback", lambda conn: open_now.discard(id(conn)))
        real = outbox.claimed_alerts

        def watched(rows: Any) -> list[outbox.ClaimedAlert]:
            during.append(bool(open_now))
            return real(rows)

        monkeypatch.setattr(worker_module.store, "claimed_alerts", watched)

        deliver_six_on_two_hubs(engine, settings, clock)
        assert during
        assert not any(during)


class TestWhereTransactionsRun:
    def test_sqlite_on_the_loop_thread_postgresql_in_a_thread(
        self,
        engine: Engine,
        settings: Settings,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # On SQLite a transaction run in a thread held the write lock while it waited for
        # the GIL; PostgreSQL's round trips must not stall the POSTs in flight.
        threads: list[int] = []
        real = outbox.record_results

        def watched(conn: sa.Connection, results: Any) -> None:
            threads.append(threading.get_ident())
            real(conn, results)

        monkeypatch.setattr(worker_module.store, "record_results", watched)

        deliver_six_on_two_hubs(engine, settings, clock)
        assert threads
        on_loop = {ident == threading.get_ident() for ident in threads}
        assert on_loop == ({True} if engine.dialect.name == "sqlite" else {False})


class TestManyWorkers:
    """Workers running side by side share the outbox: every alert is POSTed exactly once."""

    def test_three_workers_one_outbox(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url("/a"))
        add_user(engine, SUPPLIER_B, receiver.url("/b"))
        hubs = [type(HUB_1).from_int(n) for n in range(60)]
        alerts = [
            alert(f"{u}-{n}", user, hubs[n % 60])
            for n in range(120)
            for u, user in (("A", SUPPLIER_A), ("B", SUPPLIER_B))
        ]
        enqueue(engine, alerts, clock.now)
        small = settings.replace(worker_batch_size=10)

        async def main() -> list[WorkerStats]:
            workers = [Worker(engine, small, clock=clock) for _ in range(3)]
            try:
                return list(await asyncio.gather(*(w.run_until_idle() for w in workers)))
            finally:
                for w in workers:
                    await w.aclose()

        stats = asyncio.run(main())

        seen = response_ids(receiver)
        assert sorted(seen) == sorted(a.response_id for a in alerts)  # each exactly once
        assert sum(s.delivered for s in stats) == len(alerts)
        for hub in hubs[:5]:  # per (CH, user) order held across workers
            for prefix, user in (("A", SUPPLIER_A), ("B", SUPPLIER_B)):
                expected = [
                    a.response_id for a in alerts if a.device_id == hub and a.user_id == user
                ]
                assert [rid for rid in seen if rid in expected] == expected
                assert prefix in expected[0]


class TestFairness:
    """A slow endpoint's backlog does not hold up other users' alerts."""

    def test_fast_user_is_not_stuck_behind_a_slow_one(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url("/slow"), max_in_flight=1)
        add_user(engine, SUPPLIER_B, receiver.url("/fast"))
        hubs = [type(HUB_1).from_int(n) for n in range(12)]
        slow = [alert(f"A-{n}", SUPPLIER_A, hubs[n]) for n in range(12)]
        fast = [alert(f"B-{n}", SUPPLIER_B, hubs[n]) for n in range(3)]
        enqueue(engine, slow + fast, clock.now)  # every slow alert is older than the fast ones
        for a in slow:
            receiver.script(Answer(204, delay=0.05), match=f">{a.response_id}<".encode())

        stats = drain(engine, settings.replace(worker_batch_size=4), clock)

        assert stats.delivered == 15
        order = response_ids(receiver)
        last_fast = max(order.index(a.response_id) for a in fast)
        assert last_fast < order.index("A-8")  # served while A's backlog was still queued


class TestClaimPacing:
    """With POSTs in flight and nothing left to claim, the worker asks the database once per
    poll interval, not on every tick: a trickle of alerts must not cost a query per tick."""

    def test_empty_claims_are_paced_by_the_poll_interval(
        self,
        engine: Engine,
        settings: Settings,
        receiver: ScriptedReceiver,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        enqueue(engine, [alert("R-1")], clock.now)
        receiver.default = Answer(204, delay=1.0)  # in flight for a second
        claims: list[int] = []
        real_claim = outbox.claim_due_rows

        def counted(*args: object, **kwargs: object) -> Any:
            found = real_claim(*args, **kwargs)  # type: ignore[arg-type]
            claims.append(len(found))
            return found

        monkeypatch.setattr(worker_module.store, "claim_due_rows", counted)
        stats = drain(engine, settings.replace(worker_poll_seconds=0.25), clock)

        assert stats.delivered == 1
        # One claim finds the row; while it is in flight (1 s) empty claims come every
        # 0.25 s (about 4), not every 20 ms tick (about 50).
        assert claims[0] == 1
        assert 2 <= len(claims) <= 10, claims


class TestPlannerStatistics:
    """A slow claim on PostgreSQL refreshes the outbox's statistics, at most every few minutes."""

    def test_slow_claims_refresh_statistics_once(
        self,
        engine: Engine,
        settings: Settings,
        receiver: ScriptedReceiver,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(worker_module, "SLOW_CLAIM_SECONDS", 0.0)  # every claim is "slow"
        add_user(engine, SUPPLIER_A, receiver.url())
        enqueue(
            engine, [alert(f"R-{n}", hub=HUB_1 if n % 2 else HUB_2) for n in range(6)], clock.now
        )
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            assert outbox_rows_known_to_planner(engine) != 6

        with structlog.testing.capture_logs() as logs:
            stats = drain(engine, settings, clock)

        assert stats.delivered == 6
        refreshed = [e for e in logs if e["event"] == "outbox_statistics_refreshed"]
        if postgres:
            (event,) = refreshed  # several claims, one refresh
            assert event["log_level"] == "warning"
            assert outbox_rows_known_to_planner(engine) == 6
        else:
            assert refreshed == []  # SQLite plans the claim well without statistics


def outbox_rows_known_to_planner(engine: Engine) -> float:
    with engine.connect() as conn:
        return float(
            conn.execute(
                sa.text("SELECT reltuples FROM pg_class WHERE relname = 'outbox'")
            ).scalar_one()
        )


class TestPlannerStatisticsFailure:
    """A failed ANALYZE is logged; the rows that claim took are delivered all the same."""

    def test_refresh_failure_does_not_strand_claimed_rows(
        self,
        engine: Engine,
        settings: Settings,
        receiver: ScriptedReceiver,
        clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        if engine.dialect.name != "postgresql":
            pytest.skip("statistics are refreshed on PostgreSQL only")

        def refuse(_conn: object) -> None:
            raise sa.exc.OperationalError("ANALYZE outbox", {}, Exception("permission denied"))

        monkeypatch.setattr(worker_module, "SLOW_CLAIM_SECONDS", 0.0)
        monkeypatch.setattr(worker_module.store, "refresh_statistics", refuse)
        add_user(engine, SUPPLIER_A, receiver.url())
        enqueue(engine, [alert(f"R-{n}", hub=type(HUB_1).from_int(n)) for n in range(4)], clock.now)

        with structlog.testing.capture_logs() as logs:
            stats = drain(engine, settings, clock)

        assert stats.delivered == 4
        assert [e["event"] for e in logs].count("outbox_statistics_refresh_failed") == 1


class TestPlainHttp:
    """A plain http endpoint gets nothing unless its user is marked allow_insecure_http."""

    def test_unmarked_user_is_not_posted_to(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, receiver.url(), allow_insecure_http=False)
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)

        stats = drain(engine, settings, clock)

        assert (stats.delivered, stats.retried) == (0, 1)
        assert receiver.received == []
        detail = row(engine, outbox_id)
        assert detail.row.state == "pending"
        assert "plain http" in (detail.row.last_error or "")
        assert "chfw users set-endpoint" in (detail.row.last_error or "")

    def test_marked_user_is(
        self, engine: Engine, settings: Settings, receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        assert receiver.url().startswith("http://")
        add_user(engine, SUPPLIER_A, receiver.url(), allow_insecure_http=True)
        enqueue(engine, [alert("R-1")], clock.now)
        assert drain(engine, settings, clock).delivered == 1
