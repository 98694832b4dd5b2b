"""The values a batch hands from one step to the next: state read, inputs, the plan, each
message's item; and where its ResponseID counters come from (:class:`CounterSource`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Connection

from chfw.core.domain import (
    ActivationOutcome,
    ActivationPlan,
    Decision,
    DeviceId,
    DuisVersion,
    FirmwareVersion,
    MeterPoint,
    Report,
    UserId,
)
from chfw.dsp.processing.results import SubmissionResult
from chfw.dsp.store import (
    inventory,
    outbox,
)
from chfw.dsp.store.estate import Hub


class CounterSource(Protocol):
    """Where ResponseID counters come from (:class:`chfw.dsp.store.counters.CounterBlock`)."""

    def take(self, n: int, conn: Connection | None = None) -> Sequence[int]:
        """``n`` values never handed out before; ``conn``: the caller's open transaction."""
        ...

    def reserve(self, n: int) -> None:
        """Have ``n`` values on hand before a transaction that will take them."""
        ...


@dataclass
class Item:
    """One decoded outcome on its way through a batch."""

    index: int
    outcome: ActivationOutcome
    current: FirmwareVersion | None
    activation: ActivationPlan  # the decision and its recipients, made once in plan()
    sender: str  # hex of the command's sender (the outcome's identity)
    digest: str  # content_digest(outcome as received)
    history: inventory.NewOutcome | None = None
    alerts: list[outbox.NewAlert] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    parked: list[outbox.NewParked] = field(default_factory=list)  # see _finish

    @property
    def decision(self) -> Decision:
        return self.activation.decision


@dataclass
class State:
    """What a batch's decisions depend on: each known CH's firmware, and the keys of the
    outcomes already processed for those CHs."""

    known: dict[DeviceId, Hub]
    seen: dict[inventory.OutcomeIdentity, str | None]  # identity -> content digest
    # Outcomes parked before for the batch's CHs not in the estate: identity -> digest
    parked: dict[inventory.OutcomeIdentity, str] = field(default_factory=dict)

    def firmware(self) -> dict[DeviceId, HubNow]:
        return {
            d: (hub.active_firmware, hub.firmware_changed_at, hub.latest)
            for d, hub in self.known.items()
        }

    def changed_since(self, earlier: State) -> set[DeviceId]:
        """CHs whose firmware, processed outcomes or presence in the estate differ."""
        mine, theirs = self.firmware(), earlier.firmware()
        changed = {d for d in mine.keys() | theirs.keys() if mine.get(d) != theirs.get(d)}
        if self.seen != earlier.seen:
            by_hex = {d.hex: d for d in mine.keys() | theirs.keys()}
            keys = self.seen.keys() | earlier.seen.keys()
            differ = {k for k in keys if self.seen.get(k, 0) != earlier.seen.get(k, 0)}
            changed.update(by_hex[key[0]] for key in differ if key[0] in by_hex)
        return changed


HubNow = tuple[FirmwareVersion | None, datetime | None, Report | None]
"""A CH's active firmware, since when, and its newest report, as a batch goes along."""


@dataclass
class Inputs:
    """Everything a batch is planned from."""

    state: State
    points: dict[DeviceId, list[MeterPoint]]
    versions: dict[UserId, DuisVersion]


@dataclass
class Plan:
    """A batch decided, its alerts built: what the write transaction stores."""

    results: list[SubmissionResult | None]
    items: list[Item]
    rejections: list[tuple[int, DeviceId | None, str]]  # payload index, CH, reason
    # What the batch leaves its CHs at (those whose newest report moved)
    hub_states: list[inventory.HubState] = field(default_factory=list)
