"""Decide what a CS06 outcome means for the inventory and for alerts."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from chfw.domain.outcome import ActivationOutcome
from chfw.domain.recipients import MeterPoint, responsible_suppliers
from chfw.domain.values import (
    ActivationResult,
    AlertKind,
    DuisVersion,
    FirmwareVersion,
    UserId,
)


class Decision(enum.Enum):
    """What to do with an outcome, given the inventory's current version."""

    NEW_VERSION = "new_version"  # success reporting a version the inventory does not hold: alert
    SAME_VERSION = "same_version"  # success, version already recorded: nothing to send
    FAILURE = "failure"  # activation failed: history only
    PENDING = "pending"  # future-dated activation accepted: history only
    STALE = "stale"  # success that happened before the inventory's last change: history only

    @property
    def alerts_due(self) -> bool:
        return self is Decision.NEW_VERSION


def decide(
    outcome: ActivationOutcome,
    current: FirmwareVersion | None,
    current_since: datetime | None = None,
) -> Decision:
    """N64 is due exactly when the hub reports success with a version not yet recorded.

    ``current_since`` is when the inventory's version took effect. A success
    the hub says happened *before* that (a future-dated alert delayed in the
    CSP network behind a later activation) must not roll the inventory back
    nor tell suppliers an older version is active: it is recorded as STALE.
    """
    if outcome.result is ActivationResult.ACCEPTED:
        return Decision.PENDING
    if outcome.result is not ActivationResult.SUCCESS:
        return Decision.FAILURE
    if outcome.firmware_version == current:
        return Decision.SAME_VERSION
    if (
        current_since is not None
        and outcome.occurred_at is not None
        and outcome.occurred_at < current_since
    ):
        return Decision.STALE
    return Decision.NEW_VERSION


def alert_kind_for(version: DuisVersion) -> AlertKind:
    """N64 from DUIS 5.1 on; users on an older DUIS get N999 'DUIS Version Mismatch'."""
    return AlertKind.N64 if version.supports_n64 else AlertKind.N999


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    """One alert document to render for one recipient."""

    user_id: UserId
    kind: AlertKind
    duis_version: DuisVersion


@dataclass(frozen=True, slots=True)
class ActivationPlan:
    """Everything the pipeline must persist for one outcome."""

    decision: Decision
    previous_version: FirmwareVersion | None
    new_version: FirmwareVersion | None
    alerts: tuple[PlannedAlert, ...]
    unknown_recipients: tuple[UserId, ...]  # registered suppliers with no Service User record


def plan_activation(
    outcome: ActivationOutcome,
    current: FirmwareVersion | None,
    meter_points: Iterable[MeterPoint],
    duis_versions: Mapping[UserId, DuisVersion],
    current_since: datetime | None = None,
) -> ActivationPlan:
    """Decide, resolve Responsible Suppliers and choose N64/N999 per recipient.

    A supplier registered in the estate but unknown as a Service User cannot
    be sent anything; it is reported in ``unknown_recipients`` so that the
    operator sees it rather than the alert vanishing.
    """
    decision = decide(outcome, current, current_since)
    new_version = outcome.firmware_version if decision is Decision.NEW_VERSION else current
    alerts: list[PlannedAlert] = []
    unknown: list[UserId] = []
    if decision.alerts_due:
        for user_id in responsible_suppliers(meter_points):
            version = duis_versions.get(user_id)
            if version is None:
                unknown.append(user_id)
            else:
                alerts.append(PlannedAlert(user_id, alert_kind_for(version), version))
    return ActivationPlan(decision, current, new_version, tuple(alerts), tuple(unknown))
