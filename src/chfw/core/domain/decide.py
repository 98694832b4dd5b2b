"""Decide what a CS06 outcome means for the inventory and for alerts.

A version DUIS cannot carry (more than 4 octets: ``FirmwareVersion`` is 1-8
hex characters) gets one rule for every recipient, N64 and N999 alike
(:attr:`Decision.VERSION_NOT_CARRIABLE`): the activation is recorded in the
firmware history and the inventory as the hub reported it, no alert of either
kind is sent, and the intake surfaces it (the decision in its answer and the
``chfw_intake_decisions_total`` metric, an error log line naming the CH, the
version and the suppliers not told, the note on the history row). Why:
truncating would tell suppliers a version the hub does not run; and an N999
says "this N64 exists but your DUIS version cannot receive it" -- untrue when
no N64 can be made -- so sending it to DUIS 5.0 users alone would tell some
Responsible Suppliers of the CH of a change the others never hear of. The
version in the inventory (read by every supplier, chfw's inventory endpoint)
stays the truth; an operator resolves the cause with the CSP.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chfw.core.domain.ordering import Report
from chfw.core.domain.outcome import ActivationOutcome
from chfw.core.domain.recipients import MeterPoint, responsible_suppliers
from chfw.core.domain.values import (
    ActivationResult,
    AlertKind,
    DuisVersion,
    FirmwareVersion,
    UserId,
)


class Decision(enum.Enum):
    """What to do with an outcome, given the inventory's current version."""

    NEW_VERSION = "new_version"  # success reporting a version the inventory does not hold: alert
    # ... but one longer than DUIS carries: inventory and history only, surfaced, no alert
    VERSION_NOT_CARRIABLE = "version_not_carriable"
    SAME_VERSION = "same_version"  # success, version already recorded: nothing to send
    FAILURE = "failure"  # activation failed: history only
    PENDING = "pending"  # future-dated activation accepted: history only
    STALE = "stale"  # success before the newest one the hub reported: history only

    @property
    def alerts_due(self) -> bool:
        return self is Decision.NEW_VERSION

    @property
    def is_newest_report(self) -> bool:
        """The outcome is the hub's newest success: it moves the hub's order marker."""
        return self in (Decision.NEW_VERSION, Decision.VERSION_NOT_CARRIABLE, Decision.SAME_VERSION)

    @property
    def changes_inventory(self) -> bool:
        """The outcome's version becomes the CH's active firmware."""
        return self is Decision.NEW_VERSION or self is Decision.VERSION_NOT_CARRIABLE


def decide(
    outcome: ActivationOutcome,
    current: FirmwareVersion | None,
    latest: Report | None = None,
) -> Decision:
    """N64 is due exactly when the hub reports success with a version not yet recorded,
    and that success is the newest the hub has reported.

    ``latest`` is where the newest success processed for this hub stands
    (:mod:`chfw.core.domain.ordering`): one that happened before it -- by the hub's
    (clamped) time, or by the command counter when a time is missing -- is
    STALE: history only, so a late answer neither rolls the inventory back nor
    tells suppliers an older version is active. Callers clamp the outcome's
    time to its receipt first.

    A new version longer than DUIS carries is VERSION_NOT_CARRIABLE (see the
    module's docstring): same inventory change as NEW_VERSION, no alert.
    """
    if outcome.result is ActivationResult.ACCEPTED:
        return Decision.PENDING
    if outcome.result is not ActivationResult.SUCCESS:
        return Decision.FAILURE
    if latest is not None and report_of(outcome).is_before(latest):
        return Decision.STALE
    if outcome.firmware_version == current:
        return Decision.SAME_VERSION
    if outcome.firmware_version is not None and not outcome.firmware_version.duis_carriable:
        return Decision.VERSION_NOT_CARRIABLE
    return Decision.NEW_VERSION


def report_of(outcome: ActivationOutcome) -> Report:
    """Where a success stands in its hub's order of events."""
    return Report(outcome.occurred_at, outcome.recipient, outcome.originator_counter)


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
    # Responsible Suppliers not told because DUIS cannot carry the version (VERSION_NOT_CARRIABLE)
    withheld: tuple[UserId, ...] = ()


def plan_activation(
    outcome: ActivationOutcome,
    current: FirmwareVersion | None,
    meter_points: Iterable[MeterPoint],
    duis_versions: Mapping[UserId, DuisVersion],
    latest: Report | None = None,
) -> ActivationPlan:
    """Decide, resolve Responsible Suppliers and choose N64/N999 per recipient.

    A supplier registered in the estate but unknown as a Service User cannot
    be sent anything; it is reported in ``unknown_recipients`` so that the
    operator sees it rather than the alert vanishing. So are, in ``withheld``,
    the Responsible Suppliers of a VERSION_NOT_CARRIABLE outcome: none of them
    is sent anything, whatever its DUIS version.
    """
    decision = decide(outcome, current, latest)
    new_version = outcome.firmware_version if decision.changes_inventory else current
    alerts: list[PlannedAlert] = []
    unknown: list[UserId] = []
    if decision is Decision.VERSION_NOT_CARRIABLE:
        withheld = responsible_suppliers(meter_points)
        return ActivationPlan(decision, current, new_version, (), (), withheld)
    if decision.alerts_due:
        for user_id in responsible_suppliers(meter_points):
            version = duis_versions.get(user_id)
            if version is None:
                unknown.append(user_id)
            else:
                alerts.append(PlannedAlert(user_id, alert_kind_for(version), version))
    return ActivationPlan(decision, current, new_version, tuple(alerts), tuple(unknown))


def withheld_note(version: FirmwareVersion, withheld: Iterable[UserId]) -> str:
    """What an operator is told about a VERSION_NOT_CARRIABLE outcome (answer, history, log)."""
    users = ", ".join(str(user) for user in withheld)
    return (
        f"firmware version {version.hex} has {len(version.octets)} octets; DUIS carries at most "
        f"{FirmwareVersion.DUIS_MAX_OCTETS}: no N64 or N999 sent{f' to {users}' if users else ''}; "
        "recorded in the inventory -- check the hub's firmware with its CSP"
    )
