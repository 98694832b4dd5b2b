"""Backpressure: the intake answers 503 with Retry-After while the outbox backlog is over its
limit or the database cannot be reached, and takes work again once it drains."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, UserId
from chfw.dsp.intake import create_app
from chfw.dsp.intake.backpressure import RETRY_AFTER_SECONDS, Backlog, BacklogGate
from chfw.dsp.processing import ActivationService
from chfw.dsp.store import outbox
from chfw.dsp.store.backlog import pending, pending_up_to
from chfw.dsp.store.schema import outbox as outbox_table
from chfw.shared.config import Settings
from chfw.shared.db.engine import create_engine_for
from tests.dsp.intake.helpers import post_message, stored, valid_message
from tests.dsp.intake.server import running
from tests.small_dsp import Dsp

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
USER = UserId.parse("90-B3-D5-1F-30-01-00-0A")
HUB = DeviceId.parse("00-DB-12-34-56-78-90-01")


def backlog(engine: Engine, count: int, *, start: int = 0) -> None:
    """``count`` pending alerts in the outbox."""
    alerts = [
        outbox.NewAlert(
            response_id=f"R-{start + n}",
            user_id=USER,
            device_id=HUB,
            alert_code="N64",
            duis_version="5.1",
            firmware_version="0102ABCD",
            history_id=None,
            document=b"<Response/>",
        )
        for n in range(count)
    ]
    with engine.begin() as conn:
        outbox.enqueue(conn, alerts, NOW)


def deliver_all(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(outbox_table).values(state="delivered", delivered_at=NOW))


class FakeClock:
    """Monotonic seconds moved by hand; each reading may also advance it (a slow count)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 100.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class TestPendingCount:
    """Only pending rows count, and never further than the cap."""

    def test_counts_pending_only(self, engine: Engine) -> None:
        backlog(engine, 4)
        deliver_all(engine)
        backlog(engine, 3, start=10)
        with engine.connect() as conn:
            assert pending_up_to(conn, 100) == 3
            assert pending_up_to(conn, 2) == 2
            assert pending_up_to(conn, 0) == 0
            assert pending(conn) == 3


class TestGate:
    """The count is cached: refreshed at most once per interval, less often when it is slow."""

    def test_over_and_under(self, engine: Engine) -> None:
        backlog(engine, 3)
        assert BacklogGate(engine, 2, min_interval=0).current() == Backlog(3, 2)
        assert BacklogGate(engine, 2, min_interval=0).current().over_limit
        assert not BacklogGate(engine, 3, min_interval=0).current().over_limit

    def test_cached_within_the_interval(self, engine: Engine) -> None:
        clock = FakeClock()
        gate = BacklogGate(engine, 10, min_interval=1.0, clock=clock)
        assert gate.current().pending == 0
        backlog(engine, 5)
        clock.now += 0.5
        assert gate.current().pending == 0  # the cached count
        clock.now += 0.6
        assert gate.current().pending == 5

    def test_a_slow_count_is_repeated_less_often(self, engine: Engine) -> None:
        clock = FakeClock(step=0.5)  # every reading moves time on: the count "takes" 0.5 s
        gate = BacklogGate(engine, 10, min_interval=1.0, cost_factor=10, clock=clock)
        gate.current()
        backlog(engine, 5)
        clock.now += 3.0  # past min_interval, not past 10 x 0.5 s
        assert gate.current().pending == 0
        clock.now += 3.0
        assert gate.current().pending == 5

    def test_no_limit_never_counts(self, tmp_path: Path) -> None:
        unreachable = create_engine_for(f"sqlite:///{tmp_path}/missing/chfw.db")
        assert BacklogGate(unreachable, 0).current() == Backlog(0, 0)
        assert not BacklogGate(unreachable, 0).current().over_limit


def intake(dsp: Dsp, limit: int, service: ActivationService | None = None) -> object:
    service = service or dsp.service
    gate = BacklogGate(service.engine, limit, min_interval=0)  # counted afresh every request
    return create_app(Settings(intake_max_backlog=limit), service, backlog=gate)


def post(base: str, dsp: Dsp, counter: int = 7) -> httpx.Response:
    return post_message(base, dsp.credential, counter)


class TestIntakeBacklog:
    """Over the limit, CSPs are asked to come back later and nothing is processed."""

    def test_over_the_limit_is_503_with_retry_after(self, dsp: Dsp) -> None:
        backlog(dsp.engine, 3)
        with running(intake(dsp, 2)) as (host, port):
            base = f"http://{host}:{port}"
            single = post(base, dsp)
            batch = httpx.post(
                f"{base}/csp/v1/messages/batch",
                json={"messages": [valid_message(8).hex()]},
                headers={"authorization": f"Bearer {dsp.credential}"},
                timeout=10,
            )
        for answer in (single, batch):
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
            assert "backlog" in answer.json()["detail"]
        assert stored(dsp.engine)["firmware_history"] == 0

    def test_taken_again_once_delivered(self, dsp: Dsp) -> None:
        backlog(dsp.engine, 3)
        with running(intake(dsp, 2)) as (host, port):
            refused = post(f"http://{host}:{port}", dsp)
            deliver_all(dsp.engine)
            accepted = post(f"http://{host}:{port}", dsp)
        assert refused.status_code == 503
        assert accepted.status_code == 200
        assert accepted.json()["status"] == "processed"

    def test_at_the_limit_is_still_taken(self, dsp: Dsp) -> None:
        backlog(dsp.engine, 2)
        with running(intake(dsp, 2)) as (host, port):
            assert post(f"http://{host}:{port}", dsp).status_code == 200

    def test_unauthenticated_is_still_401(self, dsp: Dsp) -> None:
        backlog(dsp.engine, 3)
        with running(intake(dsp, 2)) as (host, port):
            answer = httpx.post(
                f"http://{host}:{port}/csp/v1/messages",
                content=b"x",
                headers={"content-type": "application/octet-stream"},
            )
        assert answer.status_code == 401


class TestDatabaseUnavailable:
    """A database that cannot be reached is a 503 to retry, never a 500."""

    def test_unreachable_database(self, dsp: Dsp, tmp_path: Path) -> None:
        gone = create_engine_for(f"sqlite:///{tmp_path}/gone/chfw.db")
        service = ActivationService(gone, dsp.service.builder, dsp.service.counters)
        with running(intake(dsp, 5, service)) as (host, port):
            cold = post(f"http://{host}:{port}", dsp)  # the credential check needs the database
            # A credential verified moments ago is cached; the backlog check still needs it.
            with running(intake(dsp, 5)) as (ok_host, ok_port):
                assert post(f"http://{ok_host}:{ok_port}", dsp).status_code == 200
            warm = post(f"http://{host}:{port}", dsp, counter=8)
        for answer in (cold, warm):
            assert answer.status_code == 503
            assert int(answer.headers["retry-after"]) > 0
            assert "database is unavailable" in answer.json()["detail"]
        gone.dispose()

    def test_unreachable_database_without_a_backlog_limit(self, dsp: Dsp, tmp_path: Path) -> None:
        gone = create_engine_for(f"sqlite:///{tmp_path}/gone/chfw.db")
        service = ActivationService(gone, dsp.service.builder, dsp.service.counters)
        with running(intake(dsp, 5)) as (host, port):  # caches the credential
            assert post(f"http://{host}:{port}", dsp).status_code == 200
        with running(intake(dsp, 0, service)) as (host, port):
            answer = post(f"http://{host}:{port}", dsp, counter=8)  # fails inside processing
        assert answer.status_code == 503
        gone.dispose()
