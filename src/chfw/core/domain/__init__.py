"""The pure domain: value types, outcomes, decisions, recipients. No I/O."""

from chfw.core.domain.decide import (
    ActivationPlan,
    Decision,
    PlannedAlert,
    alert_kind_for,
    decide,
    plan_activation,
    report_of,
    withheld_note,
)
from chfw.core.domain.ordering import Report, clamp
from chfw.core.domain.outcome import (
    ActivationOutcome,
    OutcomeEvent,
    OutcomeKey,
    OutcomeSource,
)
from chfw.core.domain.recipients import Fuel, MeterPoint, responsible_suppliers
from chfw.core.domain.values import (
    ActivationResult,
    AlertKind,
    DeviceId,
    DuisVersion,
    Eui64,
    FirmwareVersion,
    SupplierRole,
    UserId,
)

__all__ = [
    "ActivationOutcome",
    "ActivationPlan",
    "ActivationResult",
    "AlertKind",
    "Decision",
    "DeviceId",
    "DuisVersion",
    "Eui64",
    "FirmwareVersion",
    "Fuel",
    "MeterPoint",
    "OutcomeEvent",
    "OutcomeKey",
    "OutcomeSource",
    "PlannedAlert",
    "Report",
    "SupplierRole",
    "UserId",
    "alert_kind_for",
    "clamp",
    "decide",
    "plan_activation",
    "report_of",
    "responsible_suppliers",
    "withheld_note",
]
