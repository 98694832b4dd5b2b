"""The outbox's values: what goes in, what a claim hands a worker, what operators see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypedDict

from chfw.core.domain.values import DeviceId, UserId
from chfw.exceptions import InvalidValueError

AlertCode = Literal["N64", "N999"]
State = Literal["pending", "delivered", "dead", "parked"]
Outcome = Literal["delivered", "retry", "rejected", "dead"]

ALERT_CODES: frozenset[str] = frozenset({"N64", "N999"})
STATES: frozenset[str] = frozenset({"pending", "delivered", "dead", "parked"})
# What `list_rows(state=...)` accepts: the stored states plus the "retrying" view.
LIST_STATES: frozenset[str] = STATES | {"retrying"}
OUTCOMES: frozenset[str] = frozenset({"delivered", "retry", "rejected", "dead"})

_ERROR_MAX = 1000  # outbox.last_error and delivery_attempts.error are String(1000)


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= _ERROR_MAX:
        return text
    return text[: _ERROR_MAX - 1] + "…"


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert rendered and signed for one recipient, ready to be written to the outbox."""

    response_id: str
    user_id: UserId
    device_id: DeviceId
    alert_code: str  # "N64" | "N999"
    duis_version: str
    firmware_version: str | None
    history_id: int | None
    document: bytes

    def __post_init__(self) -> None:
        if self.alert_code not in ALERT_CODES:
            raise InvalidValueError(f"alert code {self.alert_code!r} is not N64 or N999")
        if not self.response_id or len(self.response_id) > 80:
            raise InvalidValueError(
                f"ResponseID {self.response_id!r} must be 1 to 80 characters (outbox.response_id)"
            )
        if not isinstance(self.document, bytes) or not self.document:
            raise InvalidValueError(f"alert {self.response_id}: document must be non-empty bytes")


@dataclass(frozen=True, slots=True)
class NewParked:
    """An alert for one recipient that could not be built: parked until a retry builds it."""

    response_id: str
    user_id: UserId
    device_id: DeviceId
    alert_code: str  # "N64" | "N999"
    duis_version: str
    firmware_version: str | None
    history_id: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class ParkedRow:
    """A parked row with what building it needs."""

    id: int
    response_id: str
    user_id: str  # upper-case hex, as stored
    device_id: str
    alert_code: str
    duis_version: str
    firmware_version: str | None
    history_id: int | None


@dataclass(frozen=True, slots=True)
class Unparked:
    """A parked row built: its document (and code and version, which may have changed with
    the user's DUIS version), to be made pending."""

    id: int
    alert_code: str
    duis_version: str
    document: bytes


@dataclass(frozen=True, slots=True)
class ClaimedAlert:
    """A leased outbox row with what a worker needs to POST it: the user's endpoint and TLS.

    The endpoint fields are None when the user has no endpoint URL, or no
    ``service_users`` row at all (``user_known`` False).
    """

    id: int
    response_id: str
    user_id: UserId
    device_id: DeviceId
    alert_code: str
    document: bytes
    attempts: int  # attempts made before this claim
    created_at: datetime
    user_known: bool
    endpoint_url: str | None
    tls_ca_bundle: str | None
    tls_client_cert: str | None
    tls_client_key: str | None
    max_in_flight: int | None
    allow_insecure_http: bool = False  # may the endpoint be plain http (local testing only)
    refusals_in_a_row: int = 0  # the user's run of permanent refusals when claimed


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """The outcome of one delivery attempt, as a worker reports it back.

    ``outcome``: delivered (2xx), retry (temporary failure; ``next_attempt_at``
    required), rejected (final answer such as 400: dead letter) or dead (retry
    horizon passed: dead letter). ``document``: the alert re-signed by the
    worker's current identity before this attempt, to be stored in place of the
    old one (None: the stored document was sent as it was).
    """

    outbox_id: int
    outcome: Outcome
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None
    next_attempt_at: datetime | None = None
    document: bytes | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise InvalidValueError(f"attempt outcome {self.outcome!r} is not one of {OUTCOMES}")
        if (self.outcome == "retry") != (self.next_attempt_at is not None):
            raise InvalidValueError("next_attempt_at is required for, and only for, a retry")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One outbox row as operators see it (without the document)."""

    id: int
    response_id: str
    user_id: str  # upper-case hex, as stored
    device_id: str
    alert_code: str
    duis_version: str
    firmware_version: str | None
    history_id: int | None
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    lease_until: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    document_size: int

    @property
    def display_state(self) -> str:
        """``retrying`` for a pending row that has failed at least once, else the state."""
        return "retrying" if self.state == "pending" and self.attempts > 0 else self.state


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One recorded delivery attempt."""

    attempted_at: datetime
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: float | None


@dataclass(frozen=True, slots=True)
class OutboxDetail:
    """A row, its document and every attempt, oldest first."""

    row: OutboxRow
    document: bytes
    attempts: tuple[AttemptRow, ...]


@dataclass(frozen=True, slots=True)
class BulkChange:
    """What an operator action changed: ids changed, ids left alone (with their state), unknown."""

    changed: tuple[int, ...]
    skipped: dict[int, str]
    missing: tuple[int, ...]


class OutboxCounts(TypedDict):
    """Rows per state; ``retrying`` (pending with attempts > 0) is counted inside ``pending``."""

    pending: int
    retrying: int
    delivered: int
    dead: int
    parked: int


@dataclass(frozen=True, slots=True)
class CountRow:
    """Rows per (alert code, user, state), for summaries; ``retrying`` ⊆ a pending group."""

    alert_code: str
    user_id: str
    state: str
    count: int
    retrying: int
    oldest_created: datetime | None = None  # the group's oldest alert (pending: undelivered)
