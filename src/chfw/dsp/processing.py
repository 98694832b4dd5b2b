"""Process CSP submissions in one transaction: decode, decide, inventory + history, alerts.

This is the application service behind the intake API (and the CLI and
benchmarks): the only place that joins the pure core to the store.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy.engine import Connection, Engine

from chfw.core.clock import utc_now
from chfw.core.domain import (
    ActivationOutcome,
    ActivationPlan,
    AlertKind,
    Decision,
    DeviceId,
    DuisVersion,
    FirmwareVersion,
    MeterPoint,
    OutcomeKey,
    Report,
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
    ConfigError,
    GbcsDecodeError,
    InvalidValueError,
)
from chfw.shared.db.engine import reading

log = structlog.get_logger("chfw.dsp.intake")


class Status(enum.Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"
    # CH not in the estate (yet): the outcome is kept (chfw.dsp.store.parked_outcomes) and
    # processed by the `chfw estate import` that adds the CH (HTTP 202).
    PARKED = "parked"
    # Same identity (CH, command's sender, counter, event) as a recorded outcome, other
    # content: the first stands, this one is kept for operators (HTTP 409).
    CONFLICT = "conflict"
    # The CH is in a CSP region the posting CSP does not serve (`chfw csp add --region`):
    # refused and recorded as a rejection (HTTP 403).
    REFUSED = "refused"


_ALERT_CODES = tuple(kind.value for kind in AlertKind)  # iterating an Enum per answer is slow


@dataclass(frozen=True)
class SubmissionResult:
    """What happened to one CSP message; ``to_json`` is the intake API's answer."""

    status: Status
    key: str | None = None
    device_id: str | None = None
    decision: str | None = None
    alerts: dict[str, int] = field(default_factory=dict)
    history_id: int | None = None
    error: str | None = None
    offset: int | None = None
    warnings: tuple[str, ...] = ()
    response_ids: tuple[str, ...] = ()  # of the alerts written (logged, not answered)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status.value}
        for name in ("key", "device_id", "decision", "history_id", "error", "offset"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.status in (Status.PROCESSED, Status.DUPLICATE):
            body["alerts"] = {code: self.alerts.get(code, 0) for code in _ALERT_CODES}
        if self.warnings:
            body["warnings"] = list(self.warnings)
        return body


class ActivationService:
    """Processes CS06 outcomes posted by CSPs."""

    def __init__(
        self,
        engine: Engine,
        builder: AlertBuilder,
        counters: CounterSource,
        clock: Callable[[], datetime] = utc_now,
        *,
        concurrent_batches: int = 1,
        plan_under_lock: bool | None = None,
    ) -> None:
        if concurrent_batches < 1:
            raise ConfigError(f"intake_concurrency must be at least 1, got {concurrent_batches}")
        self.engine = engine
        self.builder = builder
        self.counters = counters
        self.clock = clock
        # How many batches this process works on at once; the others queue here and
        # start the moment one commits. Python runs one thread at a time, so two
        # batches side by side do not add CPU: they hand the interpreter to each other
        # at every parse, signature and query, and each handover costs CPU on a busy
        # machine (measured on PostgreSQL: ~15 % more intake CPU per alert with two
        # than with one; on SQLite ~35 %, where they also fight over the one write
        # lock). More intake processes add throughput; more than one batch per process
        # only helps where the database is far and its round trips dominate. SQLite
        # allows one writer, so there it is always one.
        if engine.dialect.name == "sqlite":
            concurrent_batches = 1
        self.concurrent_batches = concurrent_batches
        self._batch_slots = threading.BoundedSemaphore(concurrent_batches)
        # Where a batch is decided and its alerts built: see submit(). By default
        # under the CHs' row locks on PostgreSQL, before the lock on SQLite.
        if plan_under_lock is None:
            plan_under_lock = engine.dialect.name == "postgresql"
        self.plan_under_lock = plan_under_lock
        # Called with each batch's results after its commit (e.g. chfw.shared.metrics counts them).
        self.observers: list[Callable[[Sequence[SubmissionResult]], None]] = []

    def submit(self, payloads: Sequence[bytes | str], csp: str | None) -> list[SubmissionResult]:
        """Process a batch; each payload gets its own result, in order, committed together.

        The batch is processed set-wise (one query per kind of read, one
        executemany per kind of write) but decided message by message, in
        order, so two outcomes for one CH in one batch behave exactly as if
        they had been posted one after the other.

        Where the costly part -- rendering, validating and signing every
        alert -- happens depends on what the write lock holds up
        (``plan_under_lock``):

        - On SQLite the lock is the whole database, so the batch is decided
          and built *before* the write transaction, from a read of the CHs'
          state, and the lock is held only to check that state again and
          write. If a CH's firmware or processed outcomes changed in between
          (another intake process took an outcome for it), that CH's messages
          are decided again inside the transaction, from the locked state;
          alerts built for them first are dropped, their ResponseID counters
          skipped (unique, not dense). Registration data (meter points, DUIS
          versions) is taken as read.
        - On PostgreSQL the lock is the batch's CH rows, which hold up only
          another batch naming one of the same CHs (it waits for this one to
          commit, then finds the outcome processed). There the CHs are locked
          first and the batch is decided and built inside the transaction:
          one read of their state instead of two, ~60 µs less CPU per alert
          between the intake and the database (docs/performance.md). The
          ResponseID counters the batch may need are reserved beforehand, in
          a transaction of their own, so that the counter row is not held
          for the length of the batch.
        """
        with self._batch_slots:
            results = self._process(payloads, csp)
        _log_batch(results, csp)
        for observe in self.observers:
            observe(results)
        return results

    def _process(self, payloads: Sequence[bytes | str], csp: str | None) -> list[SubmissionResult]:
        now = self.clock()
        decoded: list[ActivationOutcome | GbcsDecodeError] = []
        for payload in payloads:
            try:
                decoded.append(decode_outcome(payload))
            except GbcsDecodeError as exc:
                decoded.append(exc)
        batch = _Batch(self.builder, self.counters, csp, now, payloads, decoded)
        if self.plan_under_lock:
            self.counters.reserve(_COUNTERS_PER_OUTCOME * len(payloads))
            with self.engine.begin() as conn:
                results = batch.write(conn, batch.plan(batch.read(conn, lock=True), conn))
        else:
            with reading(self.engine) as conn:
                inputs = batch.read(conn)
            plan = batch.plan(inputs, None)  # no transaction open: counters come from their own
            with self.engine.begin() as conn:
                locked = batch.read_state(conn)
                changed = locked.changed_since(inputs.state)
                if changed:
                    fresh = batch.inputs_after_change(conn, inputs, locked, changed)
                    plan = batch.replan(plan, fresh, changed, conn)
                results = batch.write(conn, plan)
        for paused in batch.paused:  # committed: the campaign is paused now
            log.warning("campaign_paused", campaign=paused.campaign, reason=paused.reason)
        return results


# ResponseID counters reserved per message before a write transaction that builds a
# batch's alerts: a CH has one or two Responsible Suppliers (electricity, gas), rarely
# more. A batch that needs more still gets them (CounterSource.take).
_COUNTERS_PER_OUTCOME = 2


@dataclass(frozen=True)
class BatchTally:
    """A batch's results added up: by status, by decision, alerts by DCC alert code.

    One tally serves the batch's log line, its metrics and the batch answer.
    """

    statuses: Counter[str]
    decisions: Counter[str]
    alerts: Counter[str]

    @classmethod
    def of(cls, results: Sequence[SubmissionResult]) -> BatchTally:
        # Plain dict counting: Counter.update on a mapping checks its type and goes
        # through Python code per call, a visible share of a 500-message answer.
        statuses: dict[str, int] = {}
        decisions: dict[str, int] = {}
        alerts: dict[str, int] = {}
        for result in results:
            status = result.status.value
            statuses[status] = statuses.get(status, 0) + 1
            if result.decision:
                decisions[result.decision] = decisions.get(result.decision, 0) + 1
            for code, n in result.alerts.items():
                alerts[code] = alerts.get(code, 0) + n
        return cls(Counter(statuses), Counter(decisions), Counter(alerts))


def _log_batch(results: Sequence[SubmissionResult], csp: str | None) -> None:
    """One info line per batch; one line per outcome, at debug (a wave brings thousands
    a second, each already in the firmware history) or, for a refusal, at warning."""
    tally = BatchTally.of(results)
    log.info(
        "cs06_batch", csp=csp, messages=len(results), **tally.statuses, alerts=dict(tally.alerts)
    )
    debug = log.is_enabled_for(logging.DEBUG)
    for result in results:
        refused = result.status in (
            Status.MALFORMED,
            Status.PARKED,
            Status.CONFLICT,
            Status.REFUSED,
        )
        if refused or debug:
            (log.warning if refused else log.debug)(
                "cs06_outcome",
                status=result.status.value,
                device_id=result.device_id,
                key=result.key,
                decision=result.decision,
                alerts=result.alerts or None,
                response_ids=list(result.response_ids) or None,
                csp=csp,
                error=result.error,
            )


@dataclass
class _Item:
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
class _State:
    """What a batch's decisions depend on: each known CH's firmware, and the keys of the
    outcomes already processed for those CHs."""

    known: dict[DeviceId, Hub]
    seen: dict[inventory.OutcomeIdentity, str | None]  # identity -> content digest
    # Outcomes parked before for the batch's CHs not in the estate: identity -> digest
    parked: dict[inventory.OutcomeIdentity, str] = field(default_factory=dict)

    def firmware(self) -> dict[DeviceId, _HubNow]:
        return {
            d: (hub.active_firmware, hub.firmware_changed_at, hub.latest)
            for d, hub in self.known.items()
        }

    def changed_since(self, earlier: _State) -> set[DeviceId]:
        """CHs whose firmware, processed outcomes or presence in the estate differ."""
        mine, theirs = self.firmware(), earlier.firmware()
        changed = {d for d in mine.keys() | theirs.keys() if mine.get(d) != theirs.get(d)}
        if self.seen != earlier.seen:
            by_hex = {d.hex: d for d in mine.keys() | theirs.keys()}
            keys = self.seen.keys() | earlier.seen.keys()
            differ = {k for k in keys if self.seen.get(k, 0) != earlier.seen.get(k, 0)}
            changed.update(by_hex[key[0]] for key in differ if key[0] in by_hex)
        return changed


_HubNow = tuple[FirmwareVersion | None, datetime | None, Report | None]
"""A CH's active firmware, since when, and its newest report, as a batch goes along."""


@dataclass
class _Inputs:
    """Everything a batch is planned from."""

    state: _State
    points: dict[DeviceId, list[MeterPoint]]
    versions: dict[UserId, DuisVersion]


@dataclass
class _Plan:
    """A batch decided, its alerts built: what the write transaction stores."""

    results: list[SubmissionResult | None]
    items: list[_Item]
    rejections: list[tuple[int, DeviceId | None, str]]  # payload index, CH, reason
    # What the batch leaves its CHs at (those whose newest report moved)
    hub_states: list[inventory.HubState] = field(default_factory=list)


class CounterSource(Protocol):
    """Where ResponseID counters come from (:class:`chfw.dsp.store.counters.CounterBlock`)."""

    def take(self, n: int, conn: Connection | None = None) -> Sequence[int]:
        """``n`` values never handed out before; ``conn``: the caller's open transaction."""
        ...

    def reserve(self, n: int) -> None:
        """Have ``n`` values on hand before a transaction that will take them."""
        ...


class _Batch:
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

    def read_state(self, conn: Connection, *, lock: bool = True) -> _State:
        known = estate.lock_hubs(conn, self.devices, lock=lock)
        parked = parked_outcomes.payloads_for(conn, self.devices - known.keys())
        return _State(
            known,
            inventory.processed_outcomes(conn, known),
            {identity: content_digest(decode_outcome(p)) for identity, p in parked.items()},
        )

    def read(self, conn: Connection, *, lock: bool = False) -> _Inputs:
        """The CHs' state and registrations (with ``lock``, the CHs' rows locked), and the
        regions the CSP serves."""
        regions = csps.regions_of(conn, self.csp)
        self.regions = None if regions is None else frozenset(r.value for r in regions)
        state = self.read_state(conn, lock=lock)
        return _Inputs(state, *self.read_registrations(conn, state.known))

    def read_registrations(
        self, conn: Connection, devices: Iterable[DeviceId]
    ) -> tuple[dict[DeviceId, list[MeterPoint]], dict[UserId, DuisVersion]]:
        points = estate.meter_points_for_many(conn, devices)
        suppliers = {u for pts in points.values() for u in responsible_suppliers(pts)}
        return points, users.duis_versions_for(conn, suppliers)

    def inputs_after_change(
        self, conn: Connection, earlier: _Inputs, locked: _State, changed: set[DeviceId]
    ) -> _Inputs:
        """``locked`` state, with the registrations of changed CHs read again."""
        points, versions = self.read_registrations(conn, changed & locked.known.keys())
        return _Inputs(locked, {**earlier.points, **points}, {**earlier.versions, **versions})

    def replan(
        self, earlier: _Plan, inputs: _Inputs, changed: set[DeviceId], conn: Connection
    ) -> _Plan:
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
        return _Plan(results, items, rejections, states)

    def _device_of(self, index: int) -> DeviceId | None:
        item = self.decoded[index]
        return item.device_id if isinstance(item, ActivationOutcome) else None

    def plan(
        self, inputs: _Inputs, conn: Connection | None, only: set[DeviceId] | None = None
    ) -> _Plan:
        """Decide every message in order (or only those of the CHs in ``only``) and build
        the alerts due; ``conn`` is the transaction this runs in, if any (counters)."""
        now = self.now
        results: list[SubmissionResult | None] = [None] * len(self.decoded)
        rejections: list[tuple[int, DeviceId | None, str]] = []
        seen = dict(inputs.state.seen)
        parked = dict(inputs.state.parked)
        state = inputs.state.firmware()
        items: list[_Item] = []
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
            entry = _Item(i, item, current, activation, sender=identity[1], digest=digest)
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
            items.append(entry)
        self._build(items, conn)
        moved = {e.outcome.device_id for e in items if e.decision.is_newest_report}
        states = []
        for device in sorted(moved, key=lambda d: d.hex):
            version, since, latest = state[device]
            assert latest is not None  # set by the newest report that moved it
            states.append(inventory.HubState(device, version, since, latest))
        return _Plan(results, items, rejections, states)

    def _out_of_region(self, hub: Hub) -> str | None:
        """Why the CSP may not report for this CH (another region's), or None."""
        if self.regions is None or hub.csp_region.value in self.regions:
            return None
        return (
            f"Communications Hub {hub.device_id} is in the {hub.csp_region.value} region, which "
            f"CSP {self.csp} does not serve ({', '.join(sorted(self.regions))}): outcome refused"
        )

    def write(self, conn: Connection, plan: _Plan) -> list[SubmissionResult]:
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
                alerts=_count_codes(entry.alerts),
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

    def _build(self, items: list[_Item], conn: Connection | None) -> None:
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
        entry: _Item,
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
        entry.history = inventory.NewOutcome(
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


def _count_codes(alerts: Sequence[outbox.NewAlert]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert.alert_code] = counts.get(alert.alert_code, 0) + 1
    return counts


def _as_bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else payload
