"""Supplier endpoints going down, hanging and coming back: the backlog survives and drains.

Complements test_worker.py (a refused endpoint, 503s, the horizon, replay of one
row): here endpoints *hang* past the delivery timeout, one user's outage runs
beside another user's normal traffic, and a whole outage is followed from the
first failure through the backoff schedule, the dead letter and the replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain.values import DeviceId
from chfw.dsp.store import outbox
from chfw.shared.config import Settings
from chfw.shared.retry import MIN_DELAY
from tests.dsp.delivery.conftest import FakeClock
from tests.dsp.delivery.helpers import SUPPLIER_A, SUPPLIER_B, add_user, alert, drain, enqueue, row
from tests.dsp.delivery.receiver import free_port
from tests.dsp.intake.server import running

TIMEOUT = 0.5  # delivery_timeout_seconds in these tests


@dataclass
class Endpoints:
    """Supplier endpoints (one path per user) that log each POST on arrival, then answer.

    ``hang[path]`` seconds of silence before answering that path: past the
    delivery timeout, the POST fails on the DSP's side although it arrived.
    Setting it back to 0 (the endpoint recovers) ends the hangs in progress.
    """

    hang: dict[str, float] = field(default_factory=dict)
    arrivals: list[tuple[str, str]] = field(default_factory=list)  # (path, ResponseID)
    answered: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        response_id = body.split(b"<sr:ResponseID>")[1].split(b"<")[0].decode()
        self.arrivals.append((path, response_id))
        loop = asyncio.get_running_loop()
        until = loop.time() + self.hang.get(path, 0.0)
        while loop.time() < until and self.hang.get(path, 0.0) > 0:  # recovery ends the hang
            await asyncio.sleep(0.02)
        self.answered.append((path, response_id))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def ids(self, path: str) -> list[str]:
        return [rid for p, rid in self.arrivals if p == path]


@pytest.fixture
def endpoints() -> Iterator[tuple[Endpoints, str]]:
    """The endpoints app, served on 127.0.0.1: (app, base URL)."""
    app = Endpoints()
    with running(app) as (host, port):
        yield app, f"http://{host}:{port}"


@pytest.fixture
def fast_timeout(settings: Settings) -> Settings:
    return settings.replace(delivery_timeout_seconds=TIMEOUT)


def hubs(count: int) -> list[DeviceId]:
    return [DeviceId.from_int(n + 1) for n in range(count)]


class TestHangingEndpoint:
    """An endpoint that answers only after the timeout: retried, then delivered once it is back."""

    def test_timed_out_then_delivered(
        self,
        engine: Engine,
        fast_timeout: Settings,
        endpoints: tuple[Endpoints, str],
        clock: FakeClock,
    ) -> None:
        app, base = endpoints
        app.hang["/a"] = TIMEOUT * 6
        add_user(engine, SUPPLIER_A, f"{base}/a")
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)

        first = drain(engine, fast_timeout, clock)
        waiting = row(engine, outbox_id).row
        assert (first.delivered, first.retried) == (0, 1)
        assert waiting.state == "pending"
        assert waiting.last_error is not None
        assert "timed out" in waiting.last_error

        app.hang["/a"] = 0.0  # the endpoint recovers
        clock.now = waiting.next_attempt_at
        second = drain(engine, fast_timeout, clock)
        done = row(engine, outbox_id)
        assert second.delivered == 1
        assert (done.row.state, done.row.attempts) == ("delivered", 2)
        assert [a.outcome for a in done.attempts] == ["retry", "delivered"]
        # At least once: the timed-out POST had arrived too; receivers dedupe on the ResponseID.
        assert app.ids("/a") == ["R-1", "R-1"]


class TestIsolation:
    """One user's hanging endpoint does not hold up another user's deliveries."""

    def test_others_are_served_while_one_endpoint_hangs(
        self,
        engine: Engine,
        fast_timeout: Settings,
        endpoints: tuple[Endpoints, str],
        clock: FakeClock,
    ) -> None:
        app, base = endpoints
        app.hang["/a"] = TIMEOUT * 6
        add_user(engine, SUPPLIER_A, f"{base}/a", max_in_flight=1)
        add_user(engine, SUPPLIER_B, f"{base}/b")
        chs = hubs(4)
        a_alerts = [alert(f"A-{n}", SUPPLIER_A, ch) for n, ch in enumerate(chs)]
        b_alerts = [alert(f"B-{n}", SUPPLIER_B, ch) for n, ch in enumerate(chs)]
        enqueue(engine, a_alerts + b_alerts, clock.now)  # A's are older: first in the queue

        stats = drain(engine, fast_timeout, clock)

        assert (stats.delivered, stats.retried) == (4, 4)
        second_a = app.arrivals.index(("/a", app.ids("/a")[1]))
        b_positions = [app.arrivals.index(("/b", a.response_id)) for a in b_alerts]
        assert max(b_positions) < second_a  # B all arrived while A's first POST hung
        with engine.connect() as conn:
            rows = {r.response_id: r for r in outbox.list_rows(conn, limit=100)}
        assert all(rows[a.response_id].state == "delivered" for a in b_alerts)
        assert all(rows[a.response_id].state == "pending" for a in a_alerts)

        app.hang["/a"] = 0.0  # A recovers: its backlog drains
        clock.advance(fast_timeout.retry_max_seconds)
        assert drain(engine, fast_timeout, clock).delivered == 4
        with engine.connect() as conn:
            assert outbox.counts(conn)["delivered"] == 8


class TestWholeOutage:
    """An endpoint down for longer than the horizon: backoff, dead letter, replay, delivered."""

    def test_backoff_dead_letter_and_replay(
        self, engine: Engine, settings: Settings, clock: FakeClock
    ) -> None:
        settings = settings.replace(
            retry_initial_seconds=10, retry_max_seconds=80, retry_horizon_hours=0.25
        )
        port = free_port()  # nothing listens: connection refused
        add_user(engine, SUPPLIER_A, f"http://127.0.0.1:{port}/a")
        ids = enqueue(engine, [alert(f"R-{n}", hub=ch) for n, ch in enumerate(hubs(3))], clock.now)
        created = clock.now

        delays: dict[int, list[float]] = {i: [] for i in ids}
        for _ in range(200):
            drain(engine, settings, clock)
            current = {i: row(engine, i).row for i in ids}
            pending = [r for r in current.values() if r.state == "pending"]
            for r in pending:
                delays[r.id].append((r.next_attempt_at - clock.now).total_seconds())
            if not pending:
                break
            clock.now = min(r.next_attempt_at for r in pending)

        for outbox_id, waits in delays.items():
            for attempt, wait in enumerate(waits, start=1):
                cap = min(10 * 2 ** (attempt - 1), 80)
                assert MIN_DELAY <= wait <= cap, (outbox_id, attempt, wait, cap)
            assert len(waits) >= 4  # the caps grew past the initial delay before giving up
        dead = [row(engine, i) for i in ids]
        assert all(d.row.state == "dead" for d in dead)
        assert all(d.row.next_attempt_at <= created + timedelta(hours=0.25) for d in dead)
        assert all("retry horizon" in (d.row.last_error or "") for d in dead)
        schedules = {tuple(waits) for waits in delays.values()}
        assert len(schedules) == len(ids)  # jittered: the alerts do not retry in lock-step

        app = Endpoints()
        with running(app, port=port):  # the endpoint is back, at the same address
            with engine.begin() as conn:
                change = outbox.replay(conn, ids, "operator", clock.now)
            assert sorted(change.changed) == sorted(ids)
            stats = drain(engine, settings, clock)
        assert stats.delivered == 3
        assert sorted(app.ids("/a")) == ["R-0", "R-1", "R-2"]
        assert all(row(engine, i).row.state == "delivered" for i in ids)
