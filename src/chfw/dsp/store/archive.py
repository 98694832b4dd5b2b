"""Move delivered alerts past the retention period out of the outbox, with their attempts.

Delivered is final: no worker, operator command or replay changes a delivered
row again (workers settle pending rows only; replay takes dead ones). So an
old delivered row can leave the outbox without touching anything in flight,
and the outbox stays the size of the work in hand plus the retention period,
however many waves went through it. The archive tables keep everything an
operator asks of an old alert (its signed document, recipient, times and
attempts); dead rows stay in the outbox until someone deals with them.

Each batch moves the oldest rows in one transaction: a crash between batches
leaves every row either in the outbox or in the archive, never in both or
neither, and running again carries on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from chfw.dsp.store import audit
from chfw.dsp.store.outbox import OutboxDetail, attempt_rows, row_of
from chfw.dsp.store.schema import (
    archived_attempt_totals,
    delivery_attempts,
    delivery_attempts_archive,
    outbox,
    outbox_archive,
)
from chfw.exceptions import InvalidValueError
from chfw.shared.db.sql import IN_LIST_MAX, among, chunked, insert_for, to_db
from chfw.shared.db.types import UTC_TIME

DEFAULT_BATCH = 5000

_KEPT = tuple(c.name for c in outbox_archive.c if c.name != "archived_at")  # as in the outbox
_ATTEMPT_COLUMNS = tuple(c.name for c in delivery_attempts.c)


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    alerts: int
    attempts: int
    batches: int


def _old_delivered(before: datetime) -> sa.ColumnElement[bool]:
    # A delivered row's next_attempt_at is its last attempt's time, never later than its
    # delivered_at: bounding both lets ix_outbox_due (state, next_attempt_at, id) find the
    # rows as a range instead of reading every delivered row.
    at = to_db(before)
    return sa.and_(
        outbox.c.state == "delivered",
        outbox.c.next_attempt_at < at,
        outbox.c.delivered_at < at,
    )


def archivable(conn: Connection, before: datetime) -> int:
    """How many delivered rows were delivered before ``before`` (for a dry run)."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(_old_delivered(before))
        ).scalar_one()
    )


def archive_batch(conn: Connection, before: datetime, now: datetime, limit: int) -> tuple[int, int]:
    """Move up to ``limit`` of the oldest such rows and their attempts, in the caller's
    transaction; returns (alerts, attempts) moved."""
    query = (
        sa.select(outbox.c.id)
        .where(_old_delivered(before))
        .order_by(outbox.c.state, outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":  # a second archiver takes other rows
        query = query.with_for_update(skip_locked=True)
    ids: Sequence[int] = conn.execute(query).scalars().all()
    archived_at = sa.literal(to_db(now), UTC_TIME)
    attempts = 0
    for chunk in chunked(ids, IN_LIST_MAX):
        conn.execute(
            sa.insert(outbox_archive).from_select(
                [*_KEPT, "archived_at"],
                sa.select(*(outbox.c[name] for name in _KEPT), archived_at).where(
                    among(conn, outbox.c.id, chunk)
                ),
            )
        )
        conn.execute(
            sa.insert(delivery_attempts_archive).from_select(
                _ATTEMPT_COLUMNS,
                sa.select(*delivery_attempts.c).where(
                    among(conn, delivery_attempts.c.outbox_id, chunk)
                ),
            )
        )
        attempts += _add_to_totals(conn, chunk)
        conn.execute(
            sa.delete(delivery_attempts).where(among(conn, delivery_attempts.c.outbox_id, chunk))
        )
        conn.execute(
            sa.delete(outbox).where(among(conn, outbox.c.id, chunk), outbox.c.state == "delivered")
        )
    return len(ids), attempts


def _add_to_totals(conn: Connection, outbox_ids: Sequence[int]) -> int:
    """Count the attempts of ``outbox_ids`` into the archived totals; how many there were."""
    by_outcome = conn.execute(
        sa.select(delivery_attempts.c.outcome, sa.func.count())
        .where(among(conn, delivery_attempts.c.outbox_id, outbox_ids))
        .group_by(delivery_attempts.c.outcome)
        .order_by(delivery_attempts.c.outcome)  # one lock order for concurrent archivers
    ).all()
    for outcome, count in by_outcome:
        insert = insert_for(conn, archived_attempt_totals).values(outcome=outcome, count=count)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[archived_attempt_totals.c.outcome],
                set_={"count": archived_attempt_totals.c.count + insert.excluded.count},
            )
        )
    return sum(int(count) for _, count in by_outcome)


def archive_delivered(
    engine: Engine,
    before: datetime,
    now: datetime,
    *,
    actor: str,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> ArchiveResult:
    """Move every row delivered before ``before``, ``batch`` rows per transaction; the run is
    audited under ``actor``. ``progress`` is called with each batch's count."""
    if batch < 1:
        raise InvalidValueError(f"batch must be at least 1, got {batch}")
    if before > now:
        raise InvalidValueError(
            f"cut-off {before.isoformat()} is in the future: only rows delivered in the past "
            "can be archived"
        )
    alerts = attempts = batches = 0
    while True:
        with engine.begin() as conn:
            moved, moved_attempts = archive_batch(conn, before, now, batch)
        if not moved:
            break
        alerts += moved
        attempts += moved_attempts
        batches += 1
        if progress is not None:
            progress(moved)
    with engine.begin() as conn:
        audit.record(
            conn,
            actor,
            "outbox.archive",
            {"delivered_before": to_db(before).isoformat(), "alerts": alerts, "attempts": attempts},
            at=now,
        )
    return ArchiveResult(alerts, attempts, batches)


def get_archived(conn: Connection, key: int | str) -> OutboxDetail | None:
    """An archived alert by outbox id or ResponseID, as ``chfw outbox show`` shows a row
    (state ``archived``); None if the archive does not hold it."""
    if isinstance(key, int) or key.strip().isdigit():
        where = outbox_archive.c.id == int(key)
    else:
        where = outbox_archive.c.response_id == key.strip()
    a = outbox_archive.c
    row = conn.execute(
        sa.select(
            *(a[name] for name in _KEPT if name not in ("document", "delivered_at")),
            sa.literal("archived").label("state"),
            a.delivered_at.label("next_attempt_at"),
            sa.null().label("lease_until"),
            a.delivered_at,
            sa.null().label("last_error"),
            sa.func.length(a.document).label("document_size"),
            a.document,
        ).where(where)
    ).first()
    if row is None:
        return None
    attempts = conn.execute(
        sa.select(delivery_attempts_archive)
        .where(delivery_attempts_archive.c.outbox_id == row.id)
        .order_by(delivery_attempts_archive.c.id)
    )
    return OutboxDetail(
        row=row_of(row), document=bytes(row.document), attempts=attempt_rows(attempts)
    )
