"""One order of events per hub that a lying clock or a late answer cannot rewrite (pure).

A hub's successes are placed by what the hub itself says, in this order of trust:

1. **The hub's time** (the response's date-time, a future-dated alert's execution time),
   when it can be true: a time later than the DSP received the message cannot, so it is
   clamped to the receipt time for the record, flagged (:func:`clamp`), and orders nothing
   (the outcome is placed as one without a time). Without that, one hub whose clock read
   2031 would make every genuine activation until 2031 look older than its last report,
   and nothing would ever be alerted for it again.
2. **The command's counter**, when a time is missing on either side: counters belong to the
   command's sender (the response's recipient system title) and grow with each command it
   sends, so of two outcomes for commands from one sender, the higher counter is the later
   command. An answer to an earlier CS06 that arrives late, with no date-time, is therefore
   older than what the hub already reported, never a new version.
3. Otherwise (no time on one side, and two different senders) nothing the hub said orders the
   two: arrival order stands.

Each hub keeps the :class:`Report` of the newest success processed (whether it changed the
version or not); an outcome that is before it is STALE (history only: no alert, no
inventory change). An N64 therefore only ever names the hub's newest reported version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chfw.core.domain.values import Eui64


@dataclass(frozen=True, slots=True)
class Report:
    """Where one success stands in its hub's order: hub time (if any), sender, counter."""

    at: datetime | None
    sender: Eui64
    counter: int

    def is_before(self, other: Report) -> bool:
        """Whether this success happened before ``other`` by what the hub said (see module)."""
        same_sender = self.sender == other.sender
        if self.at is not None and other.at is not None and self.at != other.at:
            return self.at < other.at
        return same_sender and self.counter < other.counter


def clamp(occurred_at: datetime | None, received_at: datetime) -> tuple[datetime | None, bool]:
    """The hub's time, no later than when the message was received; True when it was later."""
    if occurred_at is not None and occurred_at > received_at:
        return received_at, True
    return occurred_at, False
