"""Fixtures for delivery tests: a real supplier endpoint, a settable clock, test settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chfw.config import Settings
from tests.delivery.receiver import ScriptedReceiver


class FakeClock:
    """A clock tests move by hand, so retries fall due without sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    """A running scripted receiver on 127.0.0.1 (plain HTTP)."""
    server = ScriptedReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    """Delivery settings for tests: short timeouts, small batches, default retry policy."""
    return Settings(
        database_url=sqlite_url,
        delivery_timeout_seconds=5.0,
        worker_batch_size=50,
        worker_poll_seconds=0.01,
    )
