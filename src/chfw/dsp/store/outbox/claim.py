"""Claiming due rows for delivery workers, and the leases that follow.

Claiming is written once for both backends. On PostgreSQL the claim query
takes ``FOR UPDATE OF outbox SKIP LOCKED`` so many workers claim disjoint rows
without waiting on each other; on SQLite the engine begins every transaction
with ``BEGIN IMMEDIATE``, so a claim transaction holds the write lock and is
exclusive. A claim sets ``lease_until``; a worker that dies leaves its rows
to be reclaimed once the lease expires (at-least-once delivery: the
receiver dedupes on the ResponseID). A claim also moves the row's
``next_attempt_at`` to the lease's end -- when it could be claimed again --
so rows in flight leave the claim query's due range: otherwise every claim
walks (and fetches from the heap) every leased row ahead of the first free
one, a cost that grows with the rows in flight and with the number of
workers (measured: 1,700 leased rows skipped, 3.4 of a claim's 5.1 ms).

Order per (CH, user): a row is claimable only when no earlier row (smaller
id) for the same CH and user is still pending, so a later alert waits while
an earlier one is retrying or in flight. Dead rows do not block. When a row
is rescheduled, its later rows get the same ``next_attempt_at`` (if theirs
was earlier): they could not go sooner anyway, and it keeps blocked rows out
of the claim query's due range, so a long outage does not make every claim
rescan them.

A suspended user (:mod:`chfw.dsp.store.suspension`) is not delivered to: a claim
that meets one of its rows leases none of them and holds all its pending rows
out of the due range for :data:`HOLD` instead (:func:`hold_users`), so claims do
not walk them; resuming makes them due.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain.values import DeviceId, UserId
from chfw.dsp.store.outbox.values import ClaimedAlert
from chfw.dsp.store.schema import outbox, service_users
from chfw.shared.db.sql import IN_LIST_MAX, among, chunked, from_db, to_db

#: How long a claim holds a suspended user's alerts before looking at them again.
HOLD = timedelta(hours=1)

# A claim has one right plan at every size of outbox: walk ix_outbox_due in order from the
# oldest due row, check each candidate's per-CH order in ix_outbox_order, stop at the
# limit. PostgreSQL chose others from statistics that no longer held, each costing in
# proportion to the whole backlog rather than to the claim:
# - psycopg prepares a statement run five times and PostgreSQL may then keep one generic
#   plan, made while the outbox was nearly empty (measured: 0.4-1.2 s a claim, 340
#   alerts/s, until an ANALYZE invalidated it);
# - statistics taken while every row was delivered (a quiet day before a wave) make
#   pending rows look rare: the order check then scanned every pending row for each
#   candidate (2.5 s for a 500-row claim with 5,845 pending), or every due row was read,
#   documents and all, hashed and sorted to return 500 (25-50 ms in a 23,000-alert wave).
# So the claim's transaction turns off the plan cache and the plan shapes that read a
# whole range (SET LOCAL: nothing else is affected), and the order check's state test
# cannot use an index (see _still_pending). The planner also has fewer plans to cost:
# ~0.5 ms instead of ~2 ms of planning a claim.
_PIN_CLAIM_PLAN = (
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('enable_seqscan', 'off', true),"
    " set_config('enable_bitmapscan', 'off', true),"
    " set_config('enable_sort', 'off', true),"
    " set_config('enable_hashjoin', 'off', true),"
    " set_config('enable_mergejoin', 'off', true)"
)


def _still_pending(table: sa.FromClause) -> sa.ColumnElement[bool]:
    """``state = 'pending'`` as a filter only: ``state || ''`` matches no index.

    For a row found by its id or its (CH, user). Left indexable, the test lets a
    planner whose statistics say pending rows are rare read them all through
    ``ix_outbox_due`` instead -- every pending row, once per row looked up.
    """
    return table.c.state.concat(sa.literal_column("''")) == "pending"


def claim_due_rows(
    conn: Connection,
    now: datetime,
    limit: int,
    lease_seconds: float,
    *,
    exclude_users: Collection[str] = (),
) -> Sequence[Any]:
    """Lease up to ``limit`` due rows, each the earliest pending row of its (CH, user).

    ``exclude_users`` (hex User IDs) lets a worker skip users whose endpoint
    already has enough of its alerts queued locally, so one slow endpoint
    cannot take every slot of a batch. Call inside a transaction.
    """
    if limit <= 0:
        return []
    at = to_db(now)
    earlier = outbox.alias("earlier")
    blocked = (
        sa.select(earlier.c.id)
        .where(
            earlier.c.device_id == outbox.c.device_id,
            earlier.c.user_id == outbox.c.user_id,
            _still_pending(earlier),
            earlier.c.id < outbox.c.id,
        )
        .exists()
    )
    query = (
        sa.select(
            outbox.c.id,
            outbox.c.response_id,
            outbox.c.user_id,
            outbox.c.device_id,
            outbox.c.alert_code,
            outbox.c.document,
            outbox.c.attempts,
            outbox.c.created_at,
            service_users.c.user_id.label("known_user"),
            service_users.c.endpoint_url,
            service_users.c.tls_ca_bundle,
            service_users.c.tls_client_cert,
            service_users.c.tls_client_key,
            service_users.c.max_in_flight,
            service_users.c.allow_insecure_http,
            service_users.c.refusals_in_a_row,
            service_users.c.suspended_at,
        )
        .select_from(outbox.outerjoin(service_users, service_users.c.user_id == outbox.c.user_id))
        .where(
            outbox.c.state == "pending",
            outbox.c.next_attempt_at <= at,
            sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= at),
            ~blocked,
        )
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )
    if exclude_users:
        query = query.where(outbox.c.user_id.not_in(sorted(exclude_users)))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=outbox)
        conn.exec_driver_sql(_PIN_CLAIM_PLAN)
    rows = conn.execute(query).all()
    suspended = {row.user_id for row in rows if row.suspended_at is not None}
    if suspended:
        hold_users(conn, sorted(suspended), now)
        rows = [row for row in rows if row.suspended_at is None]
    if not rows:
        return []
    lease_until = at + timedelta(seconds=lease_seconds)
    ids = [row.id for row in rows]
    for chunk in chunked(ids, IN_LIST_MAX):
        conn.execute(
            sa.update(outbox)
            .where(among(conn, outbox.c.id, chunk))
            .values(lease_until=lease_until, next_attempt_at=lease_until)
        )
    return rows


def claimed_alerts(rows: Sequence[Any]) -> list[ClaimedAlert]:
    """Rows of :func:`claim_due_rows` as ClaimedAlerts.

    Apart from the claim so that a worker builds them after its transaction
    commits, not while it holds SQLite's write lock.
    """
    users: dict[str, UserId] = {}
    out: list[ClaimedAlert] = []
    for row in rows:
        user = users.get(row.user_id)
        if user is None:
            user = users[row.user_id] = UserId(bytes.fromhex(row.user_id))
        out.append(
            ClaimedAlert(
                id=row.id,
                response_id=row.response_id,
                user_id=user,
                device_id=DeviceId(bytes.fromhex(row.device_id)),
                alert_code=row.alert_code,
                document=bytes(row.document),
                attempts=row.attempts,
                created_at=from_db(row.created_at),
                user_known=row.known_user is not None,
                endpoint_url=row.endpoint_url,
                tls_ca_bundle=row.tls_ca_bundle,
                tls_client_cert=row.tls_client_cert,
                tls_client_key=row.tls_client_key,
                max_in_flight=row.max_in_flight,
                allow_insecure_http=bool(row.allow_insecure_http),
                refusals_in_a_row=row.refusals_in_a_row or 0,
            )
        )
    return out


def hold_users(conn: Connection, user_ids: Sequence[str], now: datetime) -> int:
    """Every pending row of these (suspended) users that is not leased: out of the due range
    for :data:`HOLD`. Returns how many rows."""
    if not user_ids:
        return 0
    at, until = to_db(now), to_db(now + HOLD)
    rows = sa.select(outbox.c.id).where(
        outbox.c.user_id.in_(list(user_ids)),
        outbox.c.state == "pending",
        outbox.c.next_attempt_at < until,
        sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= at),
    )
    if conn.dialect.name == "postgresql":  # rows another claim holds are its own to hold
        rows = rows.with_for_update(skip_locked=True, of=outbox)
    ids = list(conn.execute(rows).scalars())
    for chunk in chunked(ids, IN_LIST_MAX):
        conn.execute(
            sa.update(outbox).where(among(conn, outbox.c.id, chunk)).values(next_attempt_at=until)
        )
    return len(ids)


def refresh_statistics(conn: Connection) -> None:
    """ANALYZE the outbox, so that the planner knows how many rows the claim must look at.

    PostgreSQL plans :func:`claim_due_rows`'s per-CH ordering check (is there an earlier
    pending row for this CH and user?) from the table's statistics. Taken while the
    table was nearly empty -- a new deployment, a burst right after delivered rows were
    archived -- they make it check each candidate against every pending row instead of
    looking it up in the ``(device_id, user_id, id)`` index: a claim then takes seconds,
    not milliseconds, until autovacuum's next ANALYZE (a minute or more away; measured:
    a wave delivered at 336 instead of ~950 alerts/s). The worker calls this when a
    claim was slow. Only PostgreSQL: SQLite plans the claim well without statistics.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE outbox")


def extend_leases(conn: Connection, ids: Sequence[int], until: datetime) -> None:
    """Push the lease of rows still being worked on, so a slow endpoint does not lose them.

    ``next_attempt_at`` moves with it, as at the claim: a row in flight stays out of
    the due range until it could be claimed again.
    """
    at = to_db(until)
    for chunk in chunked(ids, IN_LIST_MAX):
        conn.execute(
            sa.update(outbox)
            .where(among(conn, outbox.c.id, chunk), _still_pending(outbox))
            .values(lease_until=at, next_attempt_at=at)
        )


def release(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Give back leases of rows a stopping worker never started, so others claim them at once.

    They were due when claimed, so they are due again from ``now``.
    """
    at = to_db(now)
    for chunk in chunked(ids, IN_LIST_MAX):
        conn.execute(
            sa.update(outbox)
            .where(among(conn, outbox.c.id, chunk), _still_pending(outbox))
            .values(lease_until=None, next_attempt_at=at)
        )
