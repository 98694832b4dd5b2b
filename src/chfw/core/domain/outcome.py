"""A decoded CS06 activation outcome: what the hub said, independent of GBCS bytes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from chfw.core.domain.values import ActivationResult, DeviceId, Eui64, FirmwareVersion
from chfw.exceptions import InvalidValueError

MAX_COUNTER = (1 << 64) - 1


class OutcomeSource(enum.Enum):
    """Which GBCS message carried the outcome."""

    RESPONSE = "response"  # CRA flag 02, message code 0x0012
    ALERT = "alert"  # CRA flag 03, message code 0x00CA, alert code 0x8F66/0x8F67


class OutcomeEvent(enum.Enum):
    """'accepted' and its later outcome share a counter but are two events."""

    ACCEPTED = "accepted"
    OUTCOME = "outcome"


@dataclass(frozen=True, slots=True)
class OutcomeKey:
    """Identity of one activation event: the idempotency key for CSP redeliveries."""

    device_id: DeviceId
    originator_counter: int
    event: OutcomeEvent

    def __str__(self) -> str:
        return f"{self.device_id}:{self.originator_counter}:{self.event.value}"


@dataclass(frozen=True, slots=True)
class ActivationOutcome:
    """One CS06 outcome reported by a Communications Hub.

    ``originator_counter`` is the CS06 *command's* counter (from the
    transaction id of an immediate response, from the content of an alert);
    ``message_counter`` is the counter of the GBCS message that carried it.
    """

    device_id: DeviceId
    originator_counter: int
    result: ActivationResult
    firmware_version: FirmwareVersion | None
    source: OutcomeSource
    message_code: int
    message_counter: int
    recipient: Eui64
    occurred_at: datetime | None = None
    alert_code: int | None = None

    def __post_init__(self) -> None:
        for name in ("originator_counter", "message_counter"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= MAX_COUNTER:
                raise InvalidValueError(f"{name} {value!r} is not in 0..2^64-1")
        if (self.result is ActivationResult.ACCEPTED) != (self.firmware_version is None):
            raise InvalidValueError(
                "a firmware version is present exactly when the outcome is not 'accepted'"
            )

    @property
    def key(self) -> OutcomeKey:
        event = (
            OutcomeEvent.ACCEPTED
            if self.result is ActivationResult.ACCEPTED
            else OutcomeEvent.OUTCOME
        )
        return OutcomeKey(self.device_id, self.originator_counter, event)
