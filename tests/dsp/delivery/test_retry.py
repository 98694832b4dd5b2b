"""The retry policy: exponential caps, full jitter within them, never past the horizon."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chfw.exceptions import ConfigError
from chfw.shared.config import Settings
from chfw.shared.retry import MIN_DELAY, RetryPolicy

policies = st.builds(
    lambda initial, factor, horizon: RetryPolicy(initial, initial * factor, horizon),
    initial=st.floats(min_value=MIN_DELAY, max_value=600, allow_nan=False),
    factor=st.floats(min_value=1, max_value=10_000, allow_nan=False),
    horizon=st.floats(min_value=0, max_value=30 * 86400, allow_nan=False),
)
attempt_counts = st.integers(min_value=1, max_value=10_000)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


class TestCaps:
    """The cap doubles from the initial delay and stops at the maximum."""

    def test_doubling_sequence_from_settings(self) -> None:
        policy = RetryPolicy.from_settings(
            Settings(retry_initial_seconds=2, retry_max_seconds=60, retry_horizon_hours=72)
        )
        assert [policy.cap(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
        assert policy.horizon == 72 * 3600

    @given(policies, attempt_counts)
    def test_caps_are_monotone_and_bounded(self, policy: RetryPolicy, attempts: int) -> None:
        assert policy.initial <= policy.cap(attempts) <= policy.maximum
        assert policy.cap(attempts) <= policy.cap(attempts + 1)

    def test_huge_attempt_counts_do_not_overflow(self) -> None:
        assert RetryPolicy(1, 3600, 0).cap(10**9) == 3600

    def test_attempts_start_at_one(self) -> None:
        with pytest.raises(ValueError, match="starts at 1"):
            RetryPolicy(1, 2, 3).cap(0)


class TestDelays:
    """Each delay is drawn in [1 ms, cap]: full jitter, but never an immediate retry."""

    @given(policies, attempt_counts, st.randoms(use_true_random=False))
    def test_delay_within_bounds(
        self, policy: RetryPolicy, attempts: int, rng: random.Random
    ) -> None:
        delay = policy.next_delay(attempts, rng)
        assert MIN_DELAY <= delay <= policy.cap(attempts)

    def test_floor_when_the_draw_is_at_the_top(self) -> None:
        class Top(random.Random):
            def random(self) -> float:
                return 1.0 - 2**-53  # the largest value random() returns

        assert RetryPolicy(2, 10, 60).next_delay(1, Top()) == MIN_DELAY

    def test_jitter_spreads_delays(self) -> None:
        policy = RetryPolicy(10, 10, 3600)
        rng = random.Random(1)
        delays = [policy.next_delay(1, rng) for _ in range(200)]
        # Full jitter: both halves of (0, 10] are used, not a fixed delay.
        assert min(delays) < 5 < max(delays)


class TestDecide:
    """A retry is scheduled only while it falls within created_at + horizon."""

    @given(policies, attempt_counts, moments, st.floats(0, 40 * 86400), st.randoms())
    def test_never_beyond_horizon(
        self,
        policy: RetryPolicy,
        attempts: int,
        created_at: datetime,
        elapsed: float,
        rng: random.Random,
    ) -> None:
        now = created_at + timedelta(seconds=elapsed)
        deadline = created_at + timedelta(seconds=policy.horizon)
        retry_at = policy.decide(created_at, attempts, now, rng)
        if now >= deadline:
            assert retry_at is None
        else:  # before the deadline there is always one more try, at the latest at it
            assert retry_at is not None
            assert now < retry_at <= deadline
            assert retry_at - now <= timedelta(seconds=policy.cap(attempts))

    def test_a_long_wait_is_cut_to_the_deadline_not_given_up(self) -> None:
        """The issue's case: 8 failures in 20 s of a 3-minute horizon were dead-lettered
        because the next random wait would have passed the horizon."""

        class Top(random.Random):
            def random(self) -> float:
                return 0.0  # the longest wait: the whole cap

        policy = RetryPolicy(2, 600, 180)
        created = datetime(2026, 1, 1, tzinfo=UTC)
        now = created + timedelta(seconds=20)
        assert policy.decide(created, 8, now, Top()) == created + timedelta(seconds=180)
        deadline = policy.deadline(created)
        assert policy.decide(created, 9, deadline, Top()) is None
        assert policy.decide(created, 9, deadline - timedelta(microseconds=1), Top()) == deadline

    def test_gives_up_once_the_horizon_has_passed(self) -> None:
        policy = RetryPolicy(2, 3600, 72 * 3600)
        created = datetime(2026, 1, 1, tzinfo=UTC)
        rng = random.Random(3)
        assert policy.decide(created, 1, created, rng) is not None
        assert policy.decide(created, 40, created + timedelta(hours=73), rng) is None

    def test_same_seed_same_schedule(self) -> None:
        policy = RetryPolicy(2, 3600, 72 * 3600)
        created = datetime(2026, 1, 1, tzinfo=UTC)
        first = [policy.decide(created, n, created, random.Random(n)) for n in range(1, 6)]
        again = [policy.decide(created, n, created, random.Random(n)) for n in range(1, 6)]
        assert first == again


class TestValidation:
    """Nonsense settings are refused with the setting's name."""

    @pytest.mark.parametrize(
        ("initial", "maximum", "horizon", "message"),
        [
            (0, 10, 10, "retry_initial_seconds"),
            (0.0001, 10, 10, "retry_initial_seconds"),
            (5, 1, 10, "retry_max_seconds"),
            (1, 10, -1, "retry_horizon_hours"),
        ],
    )
    def test_refused(self, initial: float, maximum: float, horizon: float, message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            RetryPolicy(initial, maximum, horizon)
