"""Process CSP submissions in one transaction: decode, decide, inventory + history, alerts.

This is the application service behind the intake API (and the CLI and
benchmarks): the only place that joins the pure core to the store.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.engine import Connection, Engine

from chfw.alerts import AlertBuilder
from chfw.domain import (
    ActivationOutcome,
    AlertKind,
    Decision,
    DeviceId,
    DuisVersion,
    FirmwareVersion,
    MeterPoint,
    UserId,
    plan_activation,
    responsible_suppliers,
)
from chfw.domain.decide import decide
from chfw.exceptions import FirmwareVersionNotCarriable, GbcsDecodeError, InvalidValueError
from chfw.gbcs import decode_outcome
from chfw.store import estate, inventory, outbox, rejections, users

log = structlog.get_logger("chfw.intake")


class Status(enum.Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"
    UNKNOWN_DEVICE = "unknown_device"


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
            body["alerts"] = {kind.value: self.alerts.get(kind.value, 0) for kind in AlertKind}
        if self.warnings:
            body["warnings"] = list(self.warnings)
        return body


def utcnow() -> datetime:
    return datetime.now(UTC)


class ActivationService:
    """Processes CS06 outcomes posted by CSPs."""

    def __init__(
        self, engine: Engine, builder: AlertBuilder, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.builder = builder
        self.clock = clock
        # SQLite has one writer at a time: this process's batches queue here, each
        # waking the moment the one before commits, instead of polling SQLite's lock
        # (which, between two threads of one process, cost ~20 % more CPU per batch).
        # PostgreSQL locks only the batch's CHs, so its batches overlap.
        self._one_writer: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        # Called with each batch's results after its commit (e.g. chfw.metrics counts them).
        self.observers: list[Callable[[Sequence[SubmissionResult]], None]] = []

    def submit(self, payloads: Sequence[bytes | str], csp: str | None) -> list[SubmissionResult]:
        """Process a batch in one transaction; each payload gets its own result, in order.

        Decoding happens before the transaction, so malformed messages never
        hold the write lock. Inside it, the batch is processed set-wise (one
        query per kind of read, one executemany per kind of write) but decided
        message by message, in order, so two outcomes for one CH in one batch
        behave exactly as if they had been posted one after the other.
        """
        now = self.clock()
        decoded: list[ActivationOutcome | GbcsDecodeError] = []
        for payload in payloads:
            try:
                decoded.append(decode_outcome(payload))
            except GbcsDecodeError as exc:
                decoded.append(exc)
        with self._one_writer, self.engine.begin() as conn:
            results = _Batch(conn, self.builder, csp, now).run(payloads, decoded)
        _log_batch(results, csp)
        for observe in self.observers:
            observe(results)
        return results


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
        statuses: Counter[str] = Counter()
        decisions: Counter[str] = Counter()
        alerts: Counter[str] = Counter()
        for result in results:
            statuses[result.status.value] += 1
            if result.decision:
                decisions[result.decision] += 1
            alerts.update(result.alerts)
        return cls(statuses, decisions, alerts)


def _log_batch(results: Sequence[SubmissionResult], csp: str | None) -> None:
    """One info line per batch; one line per outcome, at debug (a wave brings thousands
    a second, each already in the firmware history) or, for a refusal, at warning."""
    tally = BatchTally.of(results)
    log.info(
        "cs06_batch", csp=csp, messages=len(results), **tally.statuses, alerts=dict(tally.alerts)
    )
    debug = log.is_enabled_for(logging.DEBUG)
    for result in results:
        refused = result.status in (Status.MALFORMED, Status.UNKNOWN_DEVICE)
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
    since: datetime | None
    decision: Decision
    history: inventory.NewOutcome | None = None
    alerts: list[outbox.NewAlert] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    new_version: FirmwareVersion | None = None


class _Batch:
    def __init__(self, conn: Connection, builder: AlertBuilder, csp: str | None, now: datetime):
        self.conn = conn
        self.builder = builder
        self.csp = csp
        self.now = now

    def run(
        self,
        payloads: Sequence[bytes | str],
        decoded: Sequence[ActivationOutcome | GbcsDecodeError],
    ) -> list[SubmissionResult]:
        conn, now = self.conn, self.now
        results: list[SubmissionResult | None] = [None] * len(decoded)
        outcomes = [(i, o) for i, o in enumerate(decoded) if isinstance(o, ActivationOutcome)]
        devices = {o.device_id for _, o in outcomes}
        known = estate.lock_hubs(conn, devices)
        seen = inventory.processed_keys(conn, known)
        state = {
            device: (hub.active_firmware, hub.firmware_changed_at) for device, hub in known.items()
        }
        items: list[_Item] = []
        for i, item in enumerate(decoded):
            if isinstance(item, GbcsDecodeError):
                results[i] = self._malformed(payloads[i], item)
                continue
            device = item.device_id
            key = item.key
            if device not in state:
                results[i] = self._unknown(payloads[i], item)
                continue
            key_text = (device.hex, str(key.originator_counter), key.event.value)
            if key_text in seen:
                results[i] = SubmissionResult(Status.DUPLICATE, key=str(key), device_id=str(device))
                continue
            seen.add(key_text)
            current, since = state[device]
            decision = decide(item, current, since)
            entry = _Item(i, item, current, since, decision)
            if decision is Decision.NEW_VERSION:
                assert item.firmware_version is not None  # a success always carries one
                entry.new_version = item.firmware_version
                state[device] = (item.firmware_version, item.occurred_at or now)
            items.append(entry)

        due = [entry for entry in items if entry.decision.alerts_due]
        points = estate.meter_points_for_many(conn, {e.outcome.device_id for e in due})
        suppliers = {u for pts in points.values() for u in responsible_suppliers(pts)}
        versions = users.duis_versions_for(conn, suppliers)
        for entry in items:
            self._plan(entry, points.get(entry.outcome.device_id, []), versions)

        history_ids = inventory.record_outcomes(
            conn,
            [entry.history for entry in items if entry.history is not None],
            recorded_at=now,
            csp=self.csp,
        )
        alerts: list[outbox.NewAlert] = []
        for entry, history_id in zip(items, history_ids, strict=True):
            for alert in entry.alerts:
                alerts.append(dataclasses.replace(alert, history_id=history_id))
            results[entry.index] = SubmissionResult(
                Status.PROCESSED,
                key=str(entry.outcome.key),
                device_id=str(entry.outcome.device_id),
                decision=entry.decision.value,
                alerts=dict(Counter(a.alert_code for a in entry.alerts)),
                history_id=history_id,
                warnings=tuple(entry.warnings),
                response_ids=tuple(a.response_id for a in entry.alerts),
            )
        final: dict[DeviceId, tuple[FirmwareVersion, datetime]] = {}
        for entry in items:
            if entry.new_version is not None:
                final[entry.outcome.device_id] = (
                    entry.new_version,
                    entry.outcome.occurred_at or now,
                )
        inventory.set_active_firmware_many(conn, ((d, v, t) for d, (v, t) in final.items()))
        outbox.enqueue(conn, alerts, now)
        return [r for r in results if r is not None]

    def _plan(
        self,
        entry: _Item,
        points: list[MeterPoint],
        versions: dict[UserId, DuisVersion],
    ) -> None:
        outcome = entry.outcome
        device = outcome.device_id
        plan = plan_activation(outcome, entry.current, points, versions, entry.since)
        entry.warnings.extend(
            f"supplier {user} is registered for {device} but is not a Service User: no alert sent"
            for user in plan.unknown_recipients
        )
        version = outcome.firmware_version
        for planned in plan.alerts:
            assert version is not None
            try:
                built = self.builder.build(planned, device, version, self.now)
            except (FirmwareVersionNotCarriable, InvalidValueError) as exc:
                entry.warnings.append(f"{planned.kind.value} for {planned.user_id} not sent: {exc}")
                log.error(
                    "alert_not_renderable",
                    device_id=str(device),
                    key=str(outcome.key),
                    error=str(exc),
                )
                continue
            entry.alerts.append(
                outbox.NewAlert(
                    response_id=str(built.response_id),
                    user_id=planned.user_id,
                    device_id=device,
                    alert_code=planned.kind.value,
                    duis_version=str(planned.duis_version),
                    firmware_version=version.hex,
                    history_id=None,
                    document=built.document,
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
        )

    def _malformed(self, payload: bytes | str, error: GbcsDecodeError) -> SubmissionResult:
        rejections.record_rejection(
            self.conn,
            csp=self.csp,
            device_id=None,
            reason=str(error),
            payload=_as_bytes(payload),
            received_at=self.now,
        )
        return SubmissionResult(Status.MALFORMED, error=str(error), offset=error.offset)

    def _unknown(self, payload: bytes | str, outcome: ActivationOutcome) -> SubmissionResult:
        device = outcome.device_id
        reason = f"Communications Hub {device} is not in the estate"
        rejections.record_rejection(
            self.conn,
            csp=self.csp,
            device_id=device,
            reason=reason,
            payload=_as_bytes(payload),
            received_at=self.now,
        )
        return SubmissionResult(
            Status.UNKNOWN_DEVICE, key=str(outcome.key), device_id=str(device), error=reason
        )


def _as_bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else payload
