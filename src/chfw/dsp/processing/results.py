"""What one submission came to (:class:`SubmissionResult`), a batch's tally, and its log line."""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from chfw.core.domain import (
    AlertKind,
)
from chfw.dsp.store import (
    outbox,
)

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


def log_batch(results: Sequence[SubmissionResult], csp: str | None) -> None:
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


def count_codes(alerts: Sequence[outbox.NewAlert]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert.alert_code] = counts.get(alert.alert_code, 0) + 1
    return counts
