"""The ground truth of a wave: what chfw must end up with, counted from the simulator's intent.

Outcomes, alerts per recipient, firmware distribution -- never from what the
pipeline answered, so that it can judge the pipeline (``Wave.ground_truth``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from chfw.core.domain import ActivationResult, AlertKind, UserId
from chfw.sim.wave import InventoryStart, Wave

# One tally per kind of hub: (future-dated, result, decision, version after, copies, no supplier).
_Kind = tuple[bool, ActivationResult, str, str | None, int, bool]


@dataclass(frozen=True)
class GroundTruth:
    """What the pipeline must do with the wave, counted from the simulator's intent.

    Assumes a fresh deployment: every supplier of the estate registered as a
    Service User, no outcome of this wave seen before, and the inventory as
    ``inventory_start`` says. With ``ESTATE``, future-dated successes must
    execute after the inventory's versions took effect (``scheduled_at``
    later than the seeding), else chfw rightly records them as stale.
    ``firmware_distribution`` maps upper-case hex (None: no version recorded)
    to CHs, over the estate.
    """

    target_version: str
    inventory_start: str
    hubs: int
    messages: int
    statuses: dict[str, int]
    outcomes: dict[str, int]
    decisions: dict[str, int]
    alerts: dict[str, int]
    alerts_by_recipient: dict[str, dict[str, int]]
    firmware_distribution: dict[str | None, int]
    hubs_without_supplier: int
    scenarios: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "target_version": self.target_version,
            "inventory_start": self.inventory_start,
            "hubs": self.hubs,
            "messages": self.messages,
            "statuses": self.statuses,
            "outcomes": self.outcomes,
            "decisions": self.decisions,
            "alerts": self.alerts,
            "alerts_by_recipient": self.alerts_by_recipient,
            "firmware_distribution": {
                "none" if version is None else version: count
                for version, count in self.firmware_distribution.items()
            },
            "hubs_without_supplier": self.hubs_without_supplier,
            "scenarios": self.scenarios,
        }


def count_ground_truth(wave: Wave) -> GroundTruth:
    """Apply the N64 rules to each hub's intended outcome.

    N64/N999 are due when the outcome is success and the version differs from
    the inventory's: one alert per distinct Responsible Supplier of the CH (its
    Import and Gas Suppliers; its Export Suppliers only where it has no Import
    Supplier), N64 from DUIS 5.1, N999 before. Worked out here on its own, not
    with chfw.core.domain's function, so that the demo checks one against the other.
    """
    tally, alerted = _tally(wave)
    statuses: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    scenarios: Counter[str] = Counter()
    distribution: Counter[str | None] = Counter()
    hubs = unsupplied = 0
    for (future, result, decision, version, copies, bare), count in tally.items():
        hubs += count
        unsupplied += bare * count
        statuses["processed"] += (2 if future else 1) * count
        statuses["duplicate"] += copies * count
        outcomes[result.value] += count
        decisions[decision] += count
        if future:
            outcomes[ActivationResult.ACCEPTED.value] += count
            decisions["pending"] += count
        timing = "future_" if future else "immediate_"
        succeeded = result is ActivationResult.SUCCESS
        scenarios[timing + ("success" if succeeded else "failure")] += count
        distribution[version] += count
    kind_of = {
        user: (AlertKind.N64 if supplier.duis_version.supports_n64 else AlertKind.N999).value
        for user, supplier in wave.estate.suppliers_by_id.items()
    }
    by_recipient: dict[UserId, Counter[str]] = {
        user: Counter({kind: alerted[user]}) for user, kind in kind_of.items()
    }
    alerts: Counter[str] = Counter()
    for counts in by_recipient.values():
        alerts.update(counts)
    kinds = [kind.value for kind in AlertKind]
    return GroundTruth(
        target_version=wave.target_version.hex,
        inventory_start=wave.inventory_start.value,
        hubs=hubs,
        messages=statuses["processed"] + statuses["duplicate"],
        statuses={"processed": statuses["processed"], "duplicate": statuses["duplicate"]},
        outcomes=_complete(outcomes, [result.value for result in ActivationResult]),
        decisions=_complete(decisions, ["new_version", "same_version", "failure", "pending"]),
        alerts=_complete(alerts, kinds),
        alerts_by_recipient={
            str(user): _complete(counts, kinds) for user, counts in by_recipient.items()
        },
        firmware_distribution=dict(
            sorted(distribution.items(), key=lambda item: (item[0] is None, item[0] or ""))
        ),
        hubs_without_supplier=unsupplied,
        scenarios=_complete(
            scenarios,
            ["immediate_success", "immediate_failure", "future_success", "future_failure"],
        ),
    )


def _tally(wave: Wave) -> tuple[Counter[_Kind], Counter[UserId]]:
    """Hubs per kind (a hub costs one update; expanded into counts afterwards), and the
    N64/N999 alerts each Responsible Supplier is due."""
    known = wave.inventory_start is InventoryStart.ESTATE
    success = ActivationResult.SUCCESS
    tally: Counter[_Kind] = Counter()
    alerted: Counter[UserId] = Counter()
    for act in wave.activations():
        hub = act.hub
        points = hub.meter_points
        electricity = [p.import_supplier for p in points if p.import_supplier is not None] or [
            p.export_supplier for p in points if p.export_supplier is not None
        ]
        recipients = {*electricity, *(p.gas_supplier for p in points if p.gas_supplier)}
        before = hub.firmware if known else None
        after = before
        if act.result is not success:
            decision = "failure"
        elif act.reported_version == before:
            decision = "same_version"
        else:
            decision = "new_version"
            after = act.reported_version
            alerted.update(recipients)
        version = None if after is None else after.hex
        key = (act.future_dated, act.result, decision, version, len(act.duplicated), not recipients)
        tally[key] += 1
    return tally, alerted


def _complete(counts: Counter[str], names: list[str]) -> dict[str, int]:
    return {name: counts.get(name, 0) for name in names}
