"""Outbox shortcuts that only tests use: a claim returning ClaimedAlerts, one-outcome settles.

The worker claims with ``outbox.claim_due_rows`` and builds its alerts after the claim's
transaction (``outbox.claimed_alerts``), and settles batches with
``outbox.record_results``; these wrap the same calls for tests that want one step.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from chfw.dsp.store.outbox import (
    AttemptResult,
    ClaimedAlert,
    Outcome,
    claim_due_rows,
    claimed_alerts,
    record_results,
)
from chfw.exceptions import InvalidValueError


def claim_due(
    conn: Connection,
    now: datetime,
    limit: int,
    lease_seconds: float,
    *,
    exclude_users: Collection[str] = (),
) -> list[ClaimedAlert]:
    """Lease up to ``limit`` due rows (see :func:`claim_due_rows`) as ClaimedAlerts."""
    return claimed_alerts(
        claim_due_rows(conn, now, limit, lease_seconds, exclude_users=exclude_users)
    )


def mark_delivered(conn: Connection, results: Sequence[AttemptResult]) -> None:
    """Settle delivered attempts (a batch); see :func:`record_results`."""
    wrong = [r.outbox_id for r in results if r.outcome != "delivered"]
    if wrong:
        raise InvalidValueError(f"mark_delivered got results that are not deliveries: {wrong}")
    record_results(conn, results)


def mark_retry(
    conn: Connection,
    outbox_id: int,
    next_attempt_at: datetime,
    error: str,
    *,
    attempted_at: datetime,
    status_code: int | None = None,
    duration_ms: float | None = None,
) -> None:
    """One temporary failure: count the attempt and schedule the next at ``next_attempt_at``."""
    record_results(
        conn,
        [
            AttemptResult(
                outbox_id,
                "retry",
                attempted_at,
                status_code,
                error,
                duration_ms,
                next_attempt_at,
            )
        ],
    )


def mark_dead(
    conn: Connection,
    outbox_id: int,
    error: str,
    *,
    attempted_at: datetime,
    rejected: bool = False,
    status_code: int | None = None,
    duration_ms: float | None = None,
) -> None:
    """One final failure: dead-letter the row (``rejected`` when the endpoint refused it)."""
    outcome: Outcome = "rejected" if rejected else "dead"
    record_results(
        conn, [AttemptResult(outbox_id, outcome, attempted_at, status_code, error, duration_ms)]
    )
