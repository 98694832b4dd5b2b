"""chfw.shared.throttle: failures per client in a sliding window; over it, a wait is named."""

from __future__ import annotations

from chfw.shared.config import Settings
from chfw.shared.throttle import FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestWindow:
    """N failures in the window block the client until the oldest leaves the window."""

    def test_blocked_after_max_failures_until_the_oldest_expires(self) -> None:
        clock = Clock()
        throttle = FailureThrottle(3, 60, clock=clock)
        for expected in (1, 2):
            assert throttle.failed("10.0.0.1") == expected
            assert throttle.retry_after("10.0.0.1") is None
            clock.now += 10
        throttle.failed("10.0.0.1")  # third failure, at t+20
        assert throttle.retry_after("10.0.0.1") == 40  # the first leaves the window at t+60
        clock.now += 39.5
        assert throttle.retry_after("10.0.0.1") == 1
        clock.now += 0.5
        assert throttle.retry_after("10.0.0.1") is None

    def test_other_clients_are_not_affected(self) -> None:
        throttle = FailureThrottle(2, 60, clock=Clock())
        throttle.failed("10.0.0.1")
        throttle.failed("10.0.0.1")
        assert throttle.retry_after("10.0.0.1") is not None
        assert throttle.retry_after("10.0.0.2") is None

    def test_failures_age_out(self) -> None:
        clock = Clock()
        throttle = FailureThrottle(2, 60, clock=clock)
        throttle.failed("a")
        clock.now += 61
        assert throttle.failed("a") == 1
        assert throttle.retry_after("a") is None

    def test_zero_means_no_limit(self) -> None:
        throttle = FailureThrottle(0, 60, clock=Clock())
        for _ in range(100):
            throttle.failed("a")
        assert throttle.retry_after("a") is None

    def test_memory_is_bounded(self) -> None:
        throttle = FailureThrottle(1, 60, max_clients=2, clock=Clock())
        for client in ("a", "b", "c"):
            throttle.failed(client)
        assert throttle.retry_after("a") is None  # forgotten: least recently failing
        assert throttle.retry_after("c") is not None


class TestSettings:
    def test_defaults_and_settings(self) -> None:
        throttle = FailureThrottle.from_settings(Settings())
        assert (throttle.max_failures, throttle.window_seconds) == (20, 60.0)
        custom = Settings(auth_max_failures=3, auth_failure_window_seconds=5)
        assert FailureThrottle.from_settings(custom).max_failures == 3
