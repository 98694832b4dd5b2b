"""One batch of CS06 outcomes: read the CHs' state, decide each message in order, build its
alerts, write everything in one transaction (the steps :class:`ActivationService` runs)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

import structlog
from sqlalchemy.engine import Connection

from chfw.core.domain import (
    ActivationOutcome,
    ActivationPlan,
    Decision,
    DeviceId,
    DuisVersion,
    MeterPoint,
    OutcomeKey,
    UserId,
    clamp,
    plan_activation,
    report_of,
    responsible_suppliers,
    withheld_note,
)
from chfw.core.gbcs import decode_outcome, message_bytes
from chfw.dsp.alerts import (
    AlertBuilder,
    AlertRequest,
    BuiltAlert,
    ParkedAlert,
    counters_needed,
)
from chfw.dsp.processing.results import Status, SubmissionResult, count_codes
from chfw.dsp.processing.steps import CounterSource, HubNow, Inputs, Item, Plan, State
from chfw.dsp.store import (
    campaign_work,
    csps,
    estate,
    inventory,
    outbox,
    parked_outcomes,
    rejections,
    users,
)
from chfw.dsp.store.estate import Hub
from chfw.exceptions import (
    GbcsDecodeError,
    InvalidValueError,
)

log = structlog.get_logger("chfw.dsp.intake")


class Batch:
    def __init__(
        self,
        builder: AlertBuilder,
        counters: CounterSource,
        csp: str | None,
        now: datetime,
        payloads: Sequence[bytes | str],
        decoded: Sequence[ActivationOutcome | GbcsDecodeError],
    ):
        self.builder = builder
        self.counters = counters
        self.csp = csp
        self.now = now
        self.payloads = payloads
        self.decoded = decoded
        self.devices = {o.device_id for o in decoded if isinstance(o, ActivationOutcome)}
        self.regions: frozenset[str] | None = None  # the CSP's regions (None: every one)
        self.paused: list[campaign_work.AutoPause] = []  # campaigns this batch paused

    def read_state(self, conn: Connection, *, lock: bool = True) -> State:
        known = estate.lock_hubs(conn, self.devices, lock=lock)
        parked = parked_outcomes.payloads_for(conn, self.devices - known.keys())
        return State(
            known,
            inventory.processed_outcomes(conn, known),
            {identity: content_digest(decode_outcome(p)) for identity, p in parked.items()},
        )

    def read(self, conn: Connection, *, lock: bool = False) -> Inputs:
        """The CHs' state and registrations (with ``lock``, the CHs' rows locked), and the
        regions the CSP serves."""
        regions = csps.regions_of(conn, self.csp)
        self.regions = None if regions is None else frozenset(r.value for r in regions)
        state = self.read_state(conn, lock=lock)
        return Inputs(state, *self.read_registrations(conn, state.known))

    def read_registrations(
        self, conn: Connection, devices: Iterable[DeviceId]
    ) -> tuple[dict[DeviceId, list[MeterPoint]], dict[UserId, DuisVersion]]:
        points = estate.meter_points_for_many(conn, devices)
        suppliers = {u for pts in points.values() for u in responsible_suppliers(pts)}
        return points, users.duis_versions_for(conn, suppliers)

    def inputs_after_change(
        self, conn: Connection, earlier: Inputs, locked: State, changed: set[DeviceId]
    ) -> Inputs:
        """``locked`` state, with the registrations of changed CHs read again."""
        points, versions = self.read_registrations(conn, changed & locked.known.keys())
        return Inputs(locked, {**earlier.points, **points}, {**earlier.versions, **versions})

    def replan(
        self, earlier: Plan, inputs: Inputs, changed: set[DeviceId], conn: Connection
    ) -> Plan:
        """Decide again the messages of the ``changed`` CHs; keep the rest of ``earlier``.

        A CH's decisions depend only on its own state and its own messages, so
        the others' alerts, already built, stand.
        """
        fresh = self.plan(inputs, conn, only=changed)
        results = [
            fresh.results[i] if self._device_of(i) in changed else earlier.results[i]
            for i in range(len(self.decoded))
        ]
        items = [e for e in earlier.items if e.outcome.device_id not in changed] + fresh.items
        items.sort(key=lambda e: e.index)
        rejections = [r for r in earlier.rejections if self._device_of(r[0]) not in changed]
        rejections += fresh.rejections
        rejections.sort(key=lambda rejection: rejection[0])  # payload order
        states = [h for h in earlier.hub_states if h.device_id not in changed] + fresh.hub_states
        return Plan(results, items, rejections, states)

    def _device_of(self, index: int) -> DeviceId | None:
        item = self.decoded[index]
        return item.device_id if isinstance(item, ActivationOutcome) else None

    def plan(
        self, inputs: Inputs, conn: Connection | None, only: set[DeviceId] | None = None
    ) -> Plan:
        """Decide every message in order (or only those of the CHs in ``only``) and build
        the alerts due; ``conn`` is the transaction this runs in, if any (counters)."""
        results: list[SubmissionResult | None] = [None] * len(self.decoded)
        rejections: list[tuple[int, DeviceId | None, str]] = []
        seen = dict(inputs.state.seen)
        parked = dict(inputs.state.parked)
        state = inputs.state.firmware()
        items: list[Item] = []
        for i, item in enumerate(self.decoded):
            if only is not None and self._device_of(i) not in only:
                continue
            if isinstance(item, GbcsDecodeError):
                rejections.append((i, None, str(item)))
                results[i] = SubmissionResult(Status.MALFORMED, error=str(item), offset=item.offset)
                continue
            device = item.device_id
            key = item.key
            identity = inventory.identity_of(item)
            digest = content_digest(item)
            if device not in state:  # kept by write(), processed once the estate has it
                if parked.setdefault(identity, digest) != digest:
                    reason = _conflict(key, item)
                    rejections.append((i, device, reason))
                    results[i] = SubmissionResult(
                        Status.CONFLICT, key=str(key), device_id=str(device), error=reason
                    )
                    continue
                results[i] = SubmissionResult(
                    Status.PARKED,
                    key=str(key),
                    device_id=str(device),
                    error=f"Communications Hub {device} is not in the estate yet: outcome "
                    "parked, processed when an estate import adds it",
                )
                continue
            refusal = self._out_of_region(inputs.state.known[device])
            if refusal is not None:
                rejections.append((i, device, refusal))
                results[i] = SubmissionResult(
                    Status.REFUSED, key=str(key), device_id=str(device), error=refusal
                )
                continue
            recorded = _recorded(seen, identity)
            if recorded is not None:
                first_digest = recorded[1]
                if first_digest is None or first_digest == digest:
                    results[i] = SubmissionResult(
                        Status.DUPLICATE, key=str(key), device_id=str(device)
                    )
                    continue
                reason = _conflict(key, item)
                rejections.append((i, device, reason))
                results[i] = SubmissionResult(
                    Status.CONFLICT, key=str(key), device_id=str(device), error=reason
                )
                continue
            seen[identity] = digest
            items.append(self._decide(i, item, identity[1], digest, inputs, state))
        self._build(items, conn)
        moved = {e.outcome.device_id for e in items if e.decision.is_newest_report}
        states = []
        for device in sorted(moved, key=lambda d: d.hex):
            version, since, latest = state[device]
            assert latest is not None  # set by the newest report that moved it
            states.append(inventory.HubState(device, version, since, latest))
        return Plan(results, items, rejections, states)

    def _decide(
        self,
        i: int,
        item: ActivationOutcome,
        sender: str,
        digest: str,
        inputs: Inputs,
        state: dict[DeviceId, HubNow],
    ) -> Item:
        """Decide message ``i`` (admitted: new, in the estate, in the CSP's regions) from its
        CH's state so far, and move that state on (``state`` is updated in place)."""
        now = self.now
        device = item.device_id
        received = item
        occurred_at, clamped = clamp(item.occurred_at, now)
        # A time that is not believed orders nothing: the command counter does.
        ordered = dataclasses.replace(item, occurred_at=None) if clamped else item
        if clamped:
            item = dataclasses.replace(item, occurred_at=occurred_at)
        current, since, latest = state[device]
        # Decided once, here: the decision and its recipients, from the one outcome
        # that orders (a clamped time orders nothing).
        activation = plan_activation(
            ordered, current, inputs.points.get(device, []), inputs.versions, latest
        )
        decision = activation.decision
        entry = Item(i, item, current, activation, sender=sender, digest=digest)
        if clamped:
            assert received.occurred_at is not None
            entry.warnings.append(
                f"the hub's time {received.occurred_at.isoformat()} is later than the "
                f"message was received ({now.isoformat()}): taken as the receipt time "
                "(the hub's clock is wrong; tell its CSP)"
            )
        if decision.is_newest_report:
            latest = report_of(ordered)
        if decision.changes_inventory:
            assert item.firmware_version is not None  # a success always carries one
            current, since = item.firmware_version, item.occurred_at or now
        state[device] = (current, since, latest)
        return entry

    def _out_of_region(self, hub: Hub) -> str | None:
        """Why the CSP may not report for this CH (another region's), or None."""
        if self.regions is None or hub.csp_region.value in self.regions:
            return None
        return (
            f"Communications Hub {hub.device_id} is in the {hub.csp_region.value} region, which "
            f"CSP {self.csp} does not serve ({', '.join(sorted(self.regions))}): outcome refused"
        )

    def write(self, conn: Connection, plan: Plan) -> list[SubmissionResult]:
        now = self.now
        for index, device, reason in plan.rejections:
            rejections.record_rejection(
                conn,
                csp=self.csp,
                device_id=device,
                reason=reason,
                payload=_as_bytes(self.payloads[index]),
                received_at=now,
            )
        results = list(plan.results)
        items = plan.items
        history_ids = inventory.record_outcomes(
            conn,
            [entry.history for entry in items if entry.history is not None],
            recorded_at=now,
            csp=self.csp,
        )
        alerts: list[outbox.NewAlert] = []
        parked: list[outbox.NewParked] = []
        for entry, history_id in zip(items, history_ids, strict=True):
            for alert in entry.alerts:
                alerts.append(dataclasses.replace(alert, history_id=history_id))
            parked.extend(dataclasses.replace(p, history_id=history_id) for p in entry.parked)
            results[entry.index] = SubmissionResult(
                Status.PROCESSED,
                key=str(entry.outcome.key),
                device_id=str(entry.outcome.device_id),
                decision=entry.decision.value,
                alerts=count_codes(entry.alerts),
                history_id=history_id,
                warnings=tuple(entry.warnings),
                response_ids=tuple(a.response_id for a in entry.alerts),
            )
        inventory.set_hub_states(conn, plan.hub_states)
        self.paused = campaign_work.count_outcomes(
            conn,
            [(e.outcome.device_id, e.outcome.result, e.outcome.firmware_version) for e in items],
            now,
        )
        outbox.enqueue(conn, alerts, now)
        outbox.park(conn, parked, now)
        self._write_parked_outcomes(conn, results)
        return [r for r in results if r is not None]

    def _write_parked_outcomes(
        self, conn: Connection, results: Sequence[SubmissionResult | None]
    ) -> None:
        """Keep the outcomes answered ``parked``; delete the parked copies of the others
        (an outcome parked earlier, processed now: by ``chfw estate import`` or sent again)."""
        keep: list[parked_outcomes.NewParkedOutcome] = []
        settled: set[inventory.OutcomeIdentity] = set()
        for index, result in enumerate(results):
            outcome = self.decoded[index]
            if result is None or not isinstance(outcome, ActivationOutcome):
                continue
            if result.status is Status.PARKED:
                payload = message_bytes(self.payloads[index])
                keep.append(parked_outcomes.NewParkedOutcome(outcome, payload, self.csp))
            elif result.status is not Status.CONFLICT:  # a conflict leaves the first copy
                settled.add(inventory.identity_of(outcome))
        parked_outcomes.park(conn, keep, self.now)
        parked_outcomes.settle(conn, settled)

    def _build(self, items: list[Item], conn: Connection | None) -> None:
        """Build all the batch's alerts in one call (each item's recipients were decided
        with it in :meth:`plan`), and record each item's history row."""
        requests: list[AlertRequest] = []
        plans: list[ActivationPlan] = []
        for entry in items:
            outcome = entry.outcome
            device = outcome.device_id
            plan = entry.activation
            plans.append(plan)
            entry.warnings.extend(
                f"supplier {user} is registered for {device} but is not a Service User: "
                "no alert sent"
                for user in plan.unknown_recipients
            )
            version = outcome.firmware_version
            if plan.decision is Decision.VERSION_NOT_CARRIABLE:
                assert version is not None
                entry.warnings.append(withheld_note(version, plan.withheld))
                log.error(
                    "firmware_version_not_carriable",
                    device_id=str(device),
                    key=str(outcome.key),
                    firmware_version=version.hex,
                    withheld=[str(user) for user in plan.withheld],
                )
            if plan.alerts:
                assert version is not None  # alerts follow a success, which carries one
                requests.extend(AlertRequest(planned, device, version) for planned in plan.alerts)
        counters = self.counters.take(counters_needed(requests), conn)
        built = iter(self.builder.build_many(requests, self.now, counters))
        for entry, plan in zip(items, plans, strict=True):
            self._finish(entry, plan, [next(built) for _ in plan.alerts])

    def _finish(
        self,
        entry: Item,
        plan: ActivationPlan,
        built: list[BuiltAlert | ParkedAlert | InvalidValueError],
    ) -> None:
        """Record an item's built alerts and its history row.

        An alert the builder parked (its recipient's DUIS version has no usable
        schema) becomes a parked outbox row, built later by ``chfw outbox retry``
        (chfw.dsp.parked); the outcome and the other recipients' alerts go ahead.
        """
        outcome = entry.outcome
        device = outcome.device_id
        version = outcome.firmware_version
        for planned, alert in zip(plan.alerts, built, strict=True):
            if isinstance(alert, ParkedAlert):
                assert version is not None
                entry.warnings.append(
                    f"{planned.kind.value} for {planned.user_id} (DUIS {planned.duis_version}) "
                    f"parked, not sent: {alert.reason} (fix it, then `chfw outbox retry "
                    f"{alert.response_id}`)"
                )
                log.error(
                    "alert_parked",
                    device_id=str(device),
                    key=str(outcome.key),
                    user_id=str(planned.user_id),
                    duis_version=str(planned.duis_version),
                    response_id=str(alert.response_id),
                    error=str(alert.reason),
                )
                entry.parked.append(
                    outbox.NewParked(
                        response_id=str(alert.response_id),
                        user_id=planned.user_id,
                        device_id=device,
                        alert_code=planned.kind.value,
                        duis_version=str(planned.duis_version),
                        firmware_version=version.hex,
                        history_id=None,
                        reason=str(alert.reason),
                    )
                )
                continue
            if not isinstance(alert, BuiltAlert):
                entry.warnings.append(
                    f"{planned.kind.value} for {planned.user_id} not sent: {alert}"
                )
                log.error(
                    "alert_not_renderable",
                    device_id=str(device),
                    key=str(outcome.key),
                    error=str(alert),
                )
                continue
            assert version is not None
            entry.alerts.append(
                outbox.NewAlert(
                    response_id=str(alert.response_id),
                    user_id=planned.user_id,
                    device_id=device,
                    alert_code=planned.kind.value,
                    duis_version=str(planned.duis_version),
                    firmware_version=version.hex,
                    history_id=None,
                    document=alert.document,
                )
            )
        entry.history = _history_row(entry, plan)


def _history_row(entry: Item, plan: ActivationPlan) -> inventory.NewOutcome:
    """The firmware history row of a decided message, with its alerts counted and its notes."""
    outcome = entry.outcome
    version = outcome.firmware_version
    return inventory.NewOutcome(
        key=outcome.key,
        source=outcome.source.value,
        result=outcome.result.value,
        decision=plan.decision.value,
        reported_version=version.hex if version else None,
        version_before=entry.current.hex if entry.current else None,
        version_after=plan.new_version.hex if plan.new_version else None,
        occurred_at=outcome.occurred_at,
        alerts_created=len(entry.alerts),
        note="; ".join(entry.warnings) or None,
        sender=entry.sender,
        content_digest=entry.digest,
    )


def content_digest(outcome: ActivationOutcome) -> str:
    """SHA-256 of what an outcome says, as received: a CSP's redelivery of the same message
    has the same; another message under the same identity (a conflict) has another.

    The carrying message's own counter is left out: the same outcome raised again in a
    new GBCS message is the same outcome.
    """
    version = outcome.firmware_version.hex if outcome.firmware_version else ""
    at = outcome.occurred_at.isoformat() if outcome.occurred_at else ""
    text = "|".join(
        (
            outcome.source.value,
            str(outcome.message_code),
            outcome.result.value,
            version,
            at,
            "" if outcome.alert_code is None else str(outcome.alert_code),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _conflict(key: OutcomeKey, outcome: ActivationOutcome) -> str:
    return (
        f"conflict: outcome {key} from sender {outcome.recipient} was received before with "
        "other content; the first stands (counters belong to the command's sender: check "
        "the CSP's and the hub's counters)"
    )


def _recorded(
    seen: dict[inventory.OutcomeIdentity, str | None], identity: inventory.OutcomeIdentity
) -> tuple[inventory.OutcomeIdentity, str | None] | None:
    """The recorded outcome with this identity, if any: rows kept before the sender was
    (sender '') match any sender."""
    if identity in seen:
        return identity, seen[identity]
    legacy = (identity[0], "", identity[2], identity[3])
    if legacy in seen:
        return legacy, seen[legacy]
    return None


def _as_bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else payload
