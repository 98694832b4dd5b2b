"""Process CSP submissions in one transaction: decode, decide, inventory + history, alerts.

This is the application service behind the intake API (and the CLI and
benchmarks): the only place that joins the pure core to the store.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from chfw.alerts import AlertBuilder
from chfw.domain import (
    ActivationOutcome,
    AlertKind,
    Decision,
    FirmwareVersion,
    plan_activation,
    responsible_suppliers,
)
from chfw.domain.decide import decide
from chfw.exceptions import FirmwareVersionNotCarriable, GbcsDecodeError, InvalidValueError
from chfw.gbcs import decode_outcome
from chfw.store import estate, inventory, outbox, rejections, users
from chfw.store._sql import from_db_opt
from chfw.store.schema import firmware_history, hubs

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

    def submit(self, payloads: Sequence[bytes | str], csp: str | None) -> list[SubmissionResult]:
        """Process a batch in one transaction; each payload gets its own result.

        Decoding happens before the transaction, so malformed messages never
        hold the write lock; they are recorded as rejections with the good ones.
        """
        now = self.clock()
        decoded: list[ActivationOutcome | GbcsDecodeError] = []
        for payload in payloads:
            try:
                decoded.append(decode_outcome(payload))
            except GbcsDecodeError as exc:
                decoded.append(exc)
        results: list[SubmissionResult] = []
        with self.engine.begin() as conn:
            for payload, item in zip(payloads, decoded, strict=True):
                if isinstance(item, GbcsDecodeError):
                    results.append(self._malformed(conn, payload, item, csp, now))
                else:
                    results.append(self._process(conn, item, payload, csp, now))
        for result in results:
            log.info(
                "cs06_outcome",
                status=result.status.value,
                device_id=result.device_id,
                key=result.key,
                decision=result.decision,
                csp=csp,
                error=result.error,
            )
        return results

    def _malformed(
        self,
        conn: Connection,
        payload: bytes | str,
        error: GbcsDecodeError,
        csp: str | None,
        now: datetime,
    ) -> SubmissionResult:
        rejections.record_rejection(
            conn,
            csp=csp,
            device_id=None,
            reason=str(error),
            payload=_as_bytes(payload),
            received_at=now,
        )
        return SubmissionResult(Status.MALFORMED, error=str(error), offset=error.offset)

    def _process(
        self,
        conn: Connection,
        outcome: ActivationOutcome,
        payload: bytes | str,
        csp: str | None,
        now: datetime,
    ) -> SubmissionResult:
        device = outcome.device_id
        key = str(outcome.key)
        hub = _lock_hub(conn, device.hex)
        if hub is None:
            reason = f"Communications Hub {device} is not in the estate"
            rejections.record_rejection(
                conn,
                csp=csp,
                device_id=device,
                reason=reason,
                payload=_as_bytes(payload),
                received_at=now,
            )
            return SubmissionResult(
                Status.UNKNOWN_DEVICE, key=key, device_id=str(device), error=reason
            )
        current = FirmwareVersion.parse(hub.active_firmware) if hub.active_firmware else None
        since = from_db_opt(hub.firmware_changed_at)
        points = []
        versions = {}
        if decide(outcome, current, since).alerts_due:
            points = estate.meter_points_for(conn, device)
            versions = users.duis_versions_for(conn, responsible_suppliers(points))
        plan = plan_activation(outcome, current, points, versions, since)
        warnings = [
            f"supplier {user} is registered for {device} but is not a Service User: no alert sent"
            for user in plan.unknown_recipients
        ]
        history_id = inventory.record_outcome(
            conn,
            key=outcome.key,
            source=outcome.source.value,
            result=outcome.result.value,
            decision=plan.decision.value,
            reported_version=outcome.firmware_version.hex if outcome.firmware_version else None,
            version_before=current.hex if current else None,
            version_after=plan.new_version.hex if plan.new_version else None,
            occurred_at=outcome.occurred_at,
            recorded_at=now,
            csp=csp,
            note="; ".join(warnings) or None,
        )
        if history_id is None:
            return SubmissionResult(
                Status.DUPLICATE, key=key, device_id=str(device), decision=plan.decision.value
            )
        alerts: Counter[str] = Counter()
        if plan.decision is Decision.NEW_VERSION:
            assert outcome.firmware_version is not None  # a success always carries one
            inventory.set_active_firmware(
                conn, device, outcome.firmware_version, outcome.occurred_at or now
            )
            new_alerts = []
            for planned in plan.alerts:
                try:
                    built = self.builder.build(planned, device, outcome.firmware_version, now)
                except (FirmwareVersionNotCarriable, InvalidValueError) as exc:
                    warnings.append(f"{planned.kind.value} for {planned.user_id} not sent: {exc}")
                    log.error(
                        "alert_not_renderable", device_id=str(device), key=key, error=str(exc)
                    )
                    continue
                alerts[planned.kind.value] += 1
                new_alerts.append(
                    outbox.NewAlert(
                        response_id=str(built.response_id),
                        user_id=planned.user_id,
                        device_id=device,
                        alert_code=planned.kind.value,
                        duis_version=str(planned.duis_version),
                        firmware_version=outcome.firmware_version.hex,
                        history_id=history_id,
                        document=built.document,
                    )
                )
            if new_alerts:
                outbox.enqueue(conn, new_alerts, now)
            conn.execute(
                sa.update(firmware_history)
                .where(firmware_history.c.id == history_id)
                .values(alerts_created=len(new_alerts), note="; ".join(warnings) or None)
            )
        return SubmissionResult(
            Status.PROCESSED,
            key=key,
            device_id=str(device),
            decision=plan.decision.value,
            alerts=dict(alerts),
            history_id=history_id,
            warnings=tuple(warnings),
        )


def _lock_hub(conn: Connection, device_hex: str) -> Any:
    """The hub's inventory row, locked on PostgreSQL so concurrent outcomes serialise per CH."""
    query = sa.select(hubs.c.active_firmware, hubs.c.firmware_changed_at).where(
        hubs.c.device_id == device_hex
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def _as_bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else payload
