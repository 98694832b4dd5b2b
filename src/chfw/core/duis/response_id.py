"""The DUIS ResponseID of a DCC Alert: ``DCC User ID : Device ID : counter``.

It is the receiver's idempotency key (delivery is at-least-once), so the
counter must never repeat for one DCC User ID and device; allocating it is the
store's job, this module only gives it a validated shape and its exact text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from chfw.core.domain.values import DeviceId, UserId
from chfw.exceptions import InvalidValueError

_EUI = r"[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}"
# The DUIS ResponseIDType form: two EUIs in their hyphenated form and a decimal
# counter without leading zeros (range is checked on the integer, not here).
_RESPONSE_ID = re.compile(rf"({_EUI}):({_EUI}):(0|[1-9][0-9]{{0,19}})")


@dataclass(frozen=True, slots=True)
class ResponseId:
    """One alert document's identity; ``str()`` is the DUIS ResponseID text."""

    dcc_user_id: UserId
    device_id: DeviceId
    counter: int
    _text: str = field(init=False, repr=False, compare=False)

    MAX_COUNTER: ClassVar[int] = (1 << 64) - 1

    def __post_init__(self) -> None:
        if not isinstance(self.dcc_user_id, UserId):
            raise InvalidValueError(
                f"ResponseID DCC User ID must be a UserId, got {type(self.dcc_user_id).__name__}"
            )
        if not isinstance(self.device_id, DeviceId):
            raise InvalidValueError(
                f"ResponseID device must be a DeviceId, got {type(self.device_id).__name__}"
            )
        counter = self.counter
        if isinstance(counter, bool) or not isinstance(counter, int):
            raise InvalidValueError(
                f"ResponseID counter must be an int, got {type(counter).__name__}"
            )
        if not 0 <= counter <= self.MAX_COUNTER:
            raise InvalidValueError(
                f"ResponseID counter {counter} is outside 0..2^64-1 ({self.MAX_COUNTER})"
            )
        # Rendered on every alert: compute the text once.
        object.__setattr__(self, "_text", f"{self.dcc_user_id}:{self.device_id}:{counter}")

    @classmethod
    def parse(cls, text: str) -> ResponseId:
        """Read the DUIS form, e.g. ``90-B3-D5-1F-30-01-00-00:00-1D-A1-00-00-00-00-42:7``."""
        match = _RESPONSE_ID.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidValueError(
                f"ResponseID {text!r} is not EUI:EUI:counter "
                "(e.g. 90-B3-D5-1F-30-01-00-00:00-1D-A1-00-00-00-00-42:7, no leading zeros)"
            )
        return cls(UserId.parse(match[1]), DeviceId.parse(match[2]), int(match[3]))

    def __str__(self) -> str:
        return self._text
