"""When to try a failed delivery again: exponential backoff with full jitter, up to a horizon.

Pure: no clock, no randomness of its own (the caller passes both), so the
policy is tested with fixed seeds and property tests.

The n-th failed attempt (n >= 1) waits a random time in ``[1 ms, cap(n)]``
with ``cap(n) = min(maximum, initial * 2**(n-1))`` — "full jitter", which
spreads a burst of failures (an endpoint going down under a wave) instead of
letting them come back in lock-step. The floor of one millisecond keeps a
retry strictly in the future at the microsecond resolution of stored times.
A retry never falls after the deadline ``created_at + horizon``: a wait that
would pass it is cut short to end exactly at the deadline, so the last try
happens at the deadline. Only a failure at or after the deadline gives up
(the alert is dead-lettered): an alert goes dead once its horizon has really
passed, never earlier because a random wait happened to be long.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chfw.exceptions import ConfigError

if TYPE_CHECKING:
    from chfw.shared.config import Settings

_MAX_EXPONENT = 62  # 2**62 already exceeds any sensible maximum; avoids float overflow
MIN_DELAY = 0.001  # seconds


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff in seconds: cap ``initial`` doubling to ``maximum``; give up after ``horizon``."""

    initial: float
    maximum: float
    horizon: float

    def __post_init__(self) -> None:
        if not self.initial >= MIN_DELAY:
            raise ConfigError(
                f"retry_initial_seconds must be at least {MIN_DELAY}, got {self.initial}"
            )
        if not self.maximum >= self.initial:
            raise ConfigError(
                f"retry_max_seconds ({self.maximum}) must be at least "
                f"retry_initial_seconds ({self.initial})"
            )
        if not self.horizon >= 0:
            raise ConfigError(f"retry_horizon_hours must not be negative, got {self.horizon}")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            initial=settings.retry_initial_seconds,
            maximum=settings.retry_max_seconds,
            horizon=settings.retry_horizon_hours * 3600.0,
        )

    def cap(self, attempts: int) -> float:
        """The longest wait after the ``attempts``-th failure."""
        if attempts < 1:
            raise ValueError(f"attempts counts failures so far and starts at 1, got {attempts}")
        exponent = min(attempts - 1, _MAX_EXPONENT)
        return min(self.maximum, self.initial * 2.0**exponent)

    def next_delay(self, attempts: int, rng: random.Random) -> float:
        """A wait in ``[MIN_DELAY, cap(attempts)]`` seconds (full jitter, never zero)."""
        return max(MIN_DELAY, self.cap(attempts) * (1.0 - rng.random()))

    def deadline(self, created_at: datetime) -> datetime:
        """The last moment an alert made at ``created_at`` is tried."""
        return created_at + timedelta(seconds=self.horizon)

    def decide(
        self, created_at: datetime, attempts: int, now: datetime, rng: random.Random
    ) -> datetime | None:
        """When to try again after the ``attempts``-th failure at ``now``, or None: give up.

        None only once ``now`` has reached the deadline; before it, the next try is at
        ``now`` plus a jittered wait, or at the deadline when that wait would pass it.
        """
        deadline = self.deadline(created_at)
        if now >= deadline:
            return None
        return min(now + timedelta(seconds=self.next_delay(attempts, rng)), deadline)
