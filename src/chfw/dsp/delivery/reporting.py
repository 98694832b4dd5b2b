"""What the delivery worker reports: a run's counts, and the reasons it writes on alerts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from chfw.core.domain.values import UserId
from chfw.dsp.store.outbox import ClaimedAlert


@dataclass
class WorkerStats:
    """What one run did. ``dead`` = rejected (400/413) + expired (retry horizon passed)."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    rejected: int = 0
    expired: int = 0
    released: int = 0  # leases given back, unstarted, at a graceful stop
    resigned: int = 0  # documents signed again with the current identity before their POST
    seconds: float = 0.0

    @property
    def dead(self) -> int:
        return self.rejected + self.expired

    @property
    def settled(self) -> int:
        return self.delivered + self.retried + self.dead

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "dead": self.dead}

    def summary(self) -> str:
        rate = f", {self.delivered / self.seconds:.0f} delivered/s" if self.seconds > 0 else ""
        resigned = f"; re-signed {self.resigned}" if self.resigned else ""
        return (
            f"delivered {self.delivered}, retried {self.retried}, dead {self.dead} "
            f"(rejected {self.rejected}, retry horizon passed {self.expired}) "
            f"in {self.seconds:.2f} s{rate}{resigned}"
        )


def dashed(user_hex: str) -> str:
    """A stored (hex) User ID as operators write it."""
    return str(UserId(bytes.fromhex(user_hex)))


def expired_reason(
    alert: ClaimedAlert, attempts: int, now: datetime, horizon: float, last: str | None
) -> str:
    """Why an alert went dead on a temporary failure: the horizon passed, with the times."""
    waited = (now - alert.created_at).total_seconds()
    return (
        f"gave up after {attempts} attempt(s) over {span(waited)}: every attempt failed and "
        f"the retry horizon of {horizon / 3600:g} h from the alert's creation "
        f"({alert.created_at:%Y-%m-%d %H:%M:%S} UTC) has passed; last error: {last}"
    )


def span(seconds: float) -> str:
    """A duration for messages: 42 s, 3.5 min, 2.1 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def insecure_reason(alert: ClaimedAlert, url: str) -> str:
    """Why a plain http endpoint is not posted to (retried: it is delivered once fixed)."""
    return (
        f"user {alert.user_id}: endpoint {url} is plain http and the user is not marked "
        "--allow-insecure-http; set an https endpoint with `chfw users set-endpoint`"
    )
