"""The outbox: one row per alert per recipient, claimed and settled by delivery workers.

State machine (see ``schema.outbox``)::

    pending --2xx--> delivered
    pending --400 / retry horizon passed--> dead --operator replay--> pending
    parked --operator retry, built--> pending

A parked row is an alert the intake could not build (its recipient's DUIS version had
no usable schema: a setting to fix, docs/configuration.md): it holds its ResponseID
and what it is about (user, CH, code, version, firmware, history id), an empty
document and the reason in ``last_error``. ``chfw outbox retry`` builds it
(``chfw.parked``) and makes it pending. Like dead rows, parked rows do not hold
up later rows of their CH and user.

Rows never vanish here: delivered rows stay until ``chfw.store.archive`` moves old ones out.
"Retrying" is not a state of its own but a view: a pending row with
``attempts > 0``; every count below keeps ``retrying`` inside ``pending``.

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

Times go in and come out timezone-aware, stored as UTC (``store._sql``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.domain.values import DeviceId, UserId
from chfw.exceptions import InvalidValueError
from chfw.store import audit
from chfw.store._sql import IN_LIST_MAX, among, chunked, from_db, from_db_opt, to_db
from chfw.store.bulk import ArrayRows, driver_time, execute_many, insert_rows
from chfw.store.schema import UTC_TIME, delivery_attempts, outbox, service_users

AlertCode = Literal["N64", "N999"]
State = Literal["pending", "delivered", "dead", "parked"]
Outcome = Literal["delivered", "retry", "rejected", "dead"]

ALERT_CODES: frozenset[str] = frozenset({"N64", "N999"})
STATES: frozenset[str] = frozenset({"pending", "delivered", "dead", "parked"})
# What `list_rows(state=...)` accepts: the stored states plus the "retrying" view.
LIST_STATES: frozenset[str] = STATES | {"retrying"}
OUTCOMES: frozenset[str] = frozenset({"delivered", "retry", "rejected", "dead"})

_ERROR_MAX = 1000  # outbox.last_error and delivery_attempts.error are String(1000)


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= _ERROR_MAX:
        return text
    return text[: _ERROR_MAX - 1] + "…"


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert rendered and signed for one recipient, ready to be written to the outbox."""

    response_id: str
    user_id: UserId
    device_id: DeviceId
    alert_code: str  # "N64" | "N999"
    duis_version: str
    firmware_version: str | None
    history_id: int | None
    document: bytes

    def __post_init__(self) -> None:
        if self.alert_code not in ALERT_CODES:
            raise InvalidValueError(f"alert code {self.alert_code!r} is not N64 or N999")
        if not self.response_id or len(self.response_id) > 80:
            raise InvalidValueError(
                f"ResponseID {self.response_id!r} must be 1 to 80 characters (outbox.response_id)"
            )
        if not isinstance(self.document, bytes) or not self.document:
            raise InvalidValueError(f"alert {self.response_id}: document must be non-empty bytes")


@dataclass(frozen=True, slots=True)
class NewParked:
    """An alert for one recipient that could not be built: parked until a retry builds it."""

    response_id: str
    user_id: UserId
    device_id: DeviceId
    alert_code: str  # "N64" | "N999"
    duis_version: str
    firmware_version: str | None
    history_id: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class ParkedRow:
    """A parked row with what building it needs."""

    id: int
    response_id: str
    user_id: str  # upper-case hex, as stored
    device_id: str
    alert_code: str
    duis_version: str
    firmware_version: str | None
    history_id: int | None


@dataclass(frozen=True, slots=True)
class Unparked:
    """A parked row built: its document (and code and version, which may have changed with
    the user's DUIS version), to be made pending."""

    id: int
    alert_code: str
    duis_version: str
    document: bytes


@dataclass(frozen=True, slots=True)
class ClaimedAlert:
    """A leased outbox row with what a worker needs to POST it: the user's endpoint and TLS.

    The endpoint fields are None when the user has no endpoint URL, or no
    ``service_users`` row at all (``user_known`` False).
    """

    id: int
    response_id: str
    user_id: UserId
    device_id: DeviceId
    alert_code: str
    document: bytes
    attempts: int  # attempts made before this claim
    created_at: datetime
    user_known: bool
    endpoint_url: str | None
    tls_ca_bundle: str | None
    tls_client_cert: str | None
    tls_client_key: str | None
    max_in_flight: int | None
    allow_insecure_http: bool = False  # may the endpoint be plain http (local testing only)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """The outcome of one delivery attempt, as a worker reports it back.

    ``outcome``: delivered (2xx), retry (temporary failure; ``next_attempt_at``
    required), rejected (final answer such as 400: dead letter) or dead (retry
    horizon passed: dead letter). ``document``: the alert re-signed by the
    worker's current identity before this attempt, to be stored in place of the
    old one (None: the stored document was sent as it was).
    """

    outbox_id: int
    outcome: Outcome
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None
    next_attempt_at: datetime | None = None
    document: bytes | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise InvalidValueError(f"attempt outcome {self.outcome!r} is not one of {OUTCOMES}")
        if (self.outcome == "retry") != (self.next_attempt_at is not None):
            raise InvalidValueError("next_attempt_at is required for, and only for, a retry")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One outbox row as operators see it (without the document)."""

    id: int
    response_id: str
    user_id: str  # upper-case hex, as stored
    device_id: str
    alert_code: str
    duis_version: str
    firmware_version: str | None
    history_id: int | None
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    lease_until: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    document_size: int

    @property
    def display_state(self) -> str:
        """``retrying`` for a pending row that has failed at least once, else the state."""
        return "retrying" if self.state == "pending" and self.attempts > 0 else self.state


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One recorded delivery attempt."""

    attempted_at: datetime
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: float | None


@dataclass(frozen=True, slots=True)
class OutboxDetail:
    """A row, its document and every attempt, oldest first."""

    row: OutboxRow
    document: bytes
    attempts: tuple[AttemptRow, ...]


@dataclass(frozen=True, slots=True)
class BulkChange:
    """What an operator action changed: ids changed, ids left alone (with their state), unknown."""

    changed: tuple[int, ...]
    skipped: dict[int, str]
    missing: tuple[int, ...]


class OutboxCounts(TypedDict):
    """Rows per state; ``retrying`` (pending with attempts > 0) is counted inside ``pending``."""

    pending: int
    retrying: int
    delivered: int
    dead: int
    parked: int


@dataclass(frozen=True, slots=True)
class CountRow:
    """Rows per (alert code, user, state), for summaries; ``retrying`` ⊆ a pending group."""

    alert_code: str
    user_id: str
    state: str
    count: int
    retrying: int


# --- writing ----------------------------------------------------------------------------------


def enqueue(conn: Connection, alerts: Sequence[NewAlert], now: datetime) -> int:
    """Write alerts as pending and due now, in one executemany; returns how many."""
    if not alerts:
        return 0
    at = driver_time(conn, outbox.c.created_at, now)
    rows = [
        (
            alert.response_id,
            alert.user_id.hex,
            alert.device_id.hex,
            alert.alert_code,
            alert.duis_version,
            alert.firmware_version,
            alert.history_id,
            alert.document,
            "pending",
            0,
            at,
            at,
        )
        for alert in alerts
    ]
    insert_rows(conn, outbox, _ENQUEUE_COLUMNS, rows)
    return len(alerts)


_ENQUEUE_COLUMNS = (
    "response_id",
    "user_id",
    "device_id",
    "alert_code",
    "duis_version",
    "firmware_version",
    "history_id",
    "document",
    "state",
    "attempts",
    "created_at",
    "next_attempt_at",
)


def park(conn: Connection, alerts: Sequence[NewParked], now: datetime) -> int:
    """Write alerts that could not be built as parked rows (empty document, the reason in
    ``last_error``); returns how many."""
    if not alerts:
        return 0
    at = driver_time(conn, outbox.c.created_at, now)
    rows = [
        (
            alert.response_id,
            alert.user_id.hex,
            alert.device_id.hex,
            alert.alert_code,
            alert.duis_version,
            alert.firmware_version,
            alert.history_id,
            b"",
            "parked",
            0,
            at,
            at,
            _clip(alert.reason),
        )
        for alert in alerts
    ]
    insert_rows(conn, outbox, (*_ENQUEUE_COLUMNS, "last_error"), rows)
    return len(alerts)


def parked_ids(conn: Connection, user_id: str | None = None) -> list[int]:
    """Ids of every parked row (of one user, hex, when given), oldest first."""
    query = sa.select(outbox.c.id).where(outbox.c.state == "parked").order_by(outbox.c.id)
    if user_id is not None:
        query = query.where(outbox.c.user_id == user_id)
    return list(conn.execute(query).scalars())


def parked_rows(conn: Connection, ids: Sequence[int]) -> list[ParkedRow]:
    """The rows among ``ids`` that are parked, oldest first."""
    found: list[ParkedRow] = []
    for chunk in chunked(list(dict.fromkeys(ids)), IN_LIST_MAX):
        rows = conn.execute(
            sa.select(
                outbox.c.id,
                outbox.c.response_id,
                outbox.c.user_id,
                outbox.c.device_id,
                outbox.c.alert_code,
                outbox.c.duis_version,
                outbox.c.firmware_version,
                outbox.c.history_id,
            ).where(among(conn, outbox.c.id, chunk), outbox.c.state == "parked")
        )
        found.extend(ParkedRow(*row) for row in rows)
    return sorted(found, key=lambda row: row.id)


def unpark(conn: Connection, built: Sequence[Unparked], now: datetime) -> list[int]:
    """Parked rows built: pending, due now, created now (the retry horizon counts from the
    document's making); returns the ids changed (a row no longer parked is left alone)."""
    at = to_db(now)
    changed: list[int] = []
    for alert in built:
        result = conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == alert.id, outbox.c.state == "parked")
            .values(
                state="pending",
                alert_code=alert.alert_code,
                duis_version=alert.duis_version,
                document=alert.document,
                attempts=0,
                created_at=at,
                next_attempt_at=at,
                lease_until=None,
                last_error=None,
            )
        )
        if result.rowcount:
            changed.append(alert.id)
    return changed


def still_parked(conn: Connection, reasons: dict[int, str]) -> None:
    """Parked rows that failed to build again: their new reason in ``last_error``."""
    for outbox_id, reason in reasons.items():
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == outbox_id, outbox.c.state == "parked")
            .values(last_error=_clip(reason))
        )


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
            )
        )
    return out


def refresh_statistics(conn: Connection) -> None:
    """ANALYZE the outbox, so that the planner knows how many rows the claim must look at.

    PostgreSQL plans :func:`claim_due`'s per-CH ordering check (is there an earlier
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


_SETTLE_DELIVERED = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("b_id"), _still_pending(outbox))
    .values(
        state="delivered",
        attempts=outbox.c.attempts + 1,
        delivered_at=sa.bindparam("b_at"),
        next_attempt_at=sa.bindparam("b_at"),
        lease_until=None,
        last_error=None,
    )
)
_SETTLED = ArrayRows("settled", {"id": sa.BigInteger(), "at": UTC_TIME})
_SETTLE_DELIVERED_SET = (  # PostgreSQL: every delivered row of a batch in one statement
    sa.update(outbox)
    .where(outbox.c.id == _SETTLED.c.id, _still_pending(outbox))
    .values(
        state="delivered",
        attempts=outbox.c.attempts + 1,
        delivered_at=_SETTLED.c.at,
        next_attempt_at=_SETTLED.c.at,
        lease_until=None,
        last_error=None,
    )
)
_SETTLE_RETRY = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("b_id"), _still_pending(outbox))
    .values(
        attempts=outbox.c.attempts + 1,
        next_attempt_at=sa.bindparam("b_next"),
        lease_until=None,
        last_error=sa.bindparam("b_error"),
    )
)
_head = outbox.alias("head")
# A retried row's later rows (same CH and user) cannot go before it: move them out of
# the due range until then, so claims do not rescan a growing set of blocked rows.
_HOLD_FOLLOWERS = (
    sa.update(outbox)
    .where(
        _still_pending(outbox),
        outbox.c.device_id
        == sa.select(_head.c.device_id).where(_head.c.id == sa.bindparam("b_id")).scalar_subquery(),
        outbox.c.user_id
        == sa.select(_head.c.user_id).where(_head.c.id == sa.bindparam("b_id")).scalar_subquery(),
        outbox.c.id > sa.bindparam("b_id"),
        outbox.c.next_attempt_at < sa.bindparam("b_next"),
    )
    .values(next_attempt_at=sa.bindparam("b_next"))
)
_SETTLE_DEAD = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("b_id"), _still_pending(outbox))
    .values(
        state="dead",
        attempts=outbox.c.attempts + 1,
        next_attempt_at=sa.bindparam("b_at"),
        lease_until=None,
        last_error=sa.bindparam("b_error"),
    )
)


_STORE_DOCUMENT = (
    sa.update(outbox)
    .where(outbox.c.id == sa.bindparam("b_id"))
    .values(document=sa.bindparam("b_document"))
)


def record_results(conn: Connection, results: Sequence[AttemptResult]) -> None:
    """Settle rows from attempt results, in one executemany per outcome, and log every attempt.

    A result that carries a re-signed ``document`` replaces the stored one
    whatever the outcome: it is what was sent, and what a retry or a replay
    sends again.

    Only pending rows change, so a late result cannot undo another worker's
    delivery or an operator's decision. Every attempt is recorded regardless.
    A delivered or dead row's ``next_attempt_at`` becomes its last attempt's time
    (the claim had moved it to the lease's end).
    """
    if not results:
        return
    delivered: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    attempts: list[tuple[Any, ...]] = []
    documents: list[dict[str, Any]] = []
    time_column = delivery_attempts.c.attempted_at
    for result in results:
        if result.document is not None:
            documents.append({"b_id": result.outbox_id, "b_document": result.document})
        at = driver_time(conn, time_column, result.attempted_at)
        error = _clip(result.error)
        if result.outcome == "delivered":
            delivered.append({"b_id": result.outbox_id, "b_at": at})
        elif result.outcome == "retry":
            assert result.next_attempt_at is not None  # checked on construction
            retry.append(
                {
                    "b_id": result.outbox_id,
                    "b_next": driver_time(conn, time_column, result.next_attempt_at),
                    "b_error": error,
                }
            )
        else:
            dead.append({"b_id": result.outbox_id, "b_at": at, "b_error": error})
        attempts.append(
            (result.outbox_id, at, result.outcome, result.status_code, error, result.duration_ms)
        )
    if conn.dialect.name == "postgresql":
        if delivered:
            conn.execute(
                _SETTLE_DELIVERED_SET, _SETTLED.params([(d["b_id"], d["b_at"]) for d in delivered])
            )
    else:
        execute_many(conn, _SETTLE_DELIVERED, delivered)
    if retry:
        execute_many(conn, _SETTLE_RETRY, retry)
        execute_many(
            conn, _HOLD_FOLLOWERS, [{"b_id": r["b_id"], "b_next": r["b_next"]} for r in retry]
        )
    execute_many(conn, _SETTLE_DEAD, dead)
    execute_many(conn, _STORE_DOCUMENT, documents)
    insert_rows(conn, delivery_attempts, _ATTEMPT_COLUMNS, attempts)


_ATTEMPT_COLUMNS = ("outbox_id", "attempted_at", "outcome", "status_code", "error", "duration_ms")


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


# --- operator actions -------------------------------------------------------------------------


def _states_of(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in chunked(ids, IN_LIST_MAX):
        rows = conn.execute(
            sa.select(outbox.c.id, outbox.c.state).where(among(conn, outbox.c.id, chunk))
        )
        found.update({row.id: row.state for row in rows})
    return found


def _change(
    conn: Connection, ids: Sequence[int], from_state: str, values: dict[str, Any]
) -> BulkChange:
    unique = list(dict.fromkeys(ids))
    states = _states_of(conn, unique)
    changed = [i for i in unique if states.get(i) == from_state]
    for chunk in chunked(changed, IN_LIST_MAX):
        conn.execute(
            sa.update(outbox)
            .where(among(conn, outbox.c.id, chunk), outbox.c.state == from_state)
            .values(**values)
        )
    return BulkChange(
        changed=tuple(changed),
        skipped={i: s for i, s in states.items() if s != from_state},
        missing=tuple(i for i in unique if i not in states),
    )


def retry_now(conn: Connection, ids: Sequence[int], now: datetime) -> BulkChange:
    """Make pending rows due now (an operator's "try again", e.g. after an endpoint fix)."""
    return _change(conn, ids, "pending", {"next_attempt_at": to_db(now)})


def replay(conn: Connection, ids: Sequence[int], actor: str, now: datetime) -> BulkChange:
    """Dead rows back to pending and due now, attempts kept; audited under ``actor``.

    The retry horizon still counts from the row's creation, so a replayed row
    that fails temporarily again is dead-lettered after that one attempt.
    """
    at = to_db(now)
    change = _change(
        conn, ids, "dead", {"state": "pending", "next_attempt_at": at, "lease_until": None}
    )
    if change.changed:
        audit.record(
            conn,
            actor,
            "outbox.replay",
            {"ids": list(change.changed[:1000]), "count": len(change.changed)},
            at=at,
        )
    return change


def dead_ids(conn: Connection, user_id: str | None = None) -> list[int]:
    """Ids of every dead row (of one user, hex, when given), oldest first."""
    query = sa.select(outbox.c.id).where(outbox.c.state == "dead").order_by(outbox.c.id)
    if user_id is not None:
        query = query.where(outbox.c.user_id == user_id)
    return list(conn.execute(query).scalars())


def resolve(conn: Connection, keys: Sequence[str]) -> dict[str, int | None]:
    """Map operator input (an outbox id or a ResponseID) to outbox ids; None when unknown."""
    found: dict[str, int | None] = {}
    for key in keys:
        found[key] = _id_of(conn, key)
    return found


def _id_of(conn: Connection, key: int | str) -> int | None:
    if isinstance(key, int) or key.strip().isdigit():
        outbox_id = int(key)
        exists = conn.execute(sa.select(outbox.c.id).where(outbox.c.id == outbox_id)).first()
        return outbox_id if exists else None
    found: int | None = conn.execute(
        sa.select(outbox.c.id).where(outbox.c.response_id == key.strip())
    ).scalar()
    return found


# --- reading ----------------------------------------------------------------------------------

_ROW_COLUMNS = (
    outbox.c.id,
    outbox.c.response_id,
    outbox.c.user_id,
    outbox.c.device_id,
    outbox.c.alert_code,
    outbox.c.duis_version,
    outbox.c.firmware_version,
    outbox.c.history_id,
    outbox.c.state,
    outbox.c.attempts,
    outbox.c.created_at,
    outbox.c.next_attempt_at,
    outbox.c.lease_until,
    outbox.c.delivered_at,
    outbox.c.last_error,
    sa.func.length(outbox.c.document).label("document_size"),
)


def row_of(row: Any) -> OutboxRow:
    """A row selected with the outbox's listing columns (or the same labels) as an OutboxRow."""
    return OutboxRow(
        id=row.id,
        response_id=row.response_id,
        user_id=row.user_id,
        device_id=row.device_id,
        alert_code=row.alert_code,
        duis_version=row.duis_version,
        firmware_version=row.firmware_version,
        history_id=row.history_id,
        state=row.state,
        attempts=row.attempts,
        created_at=from_db(row.created_at),
        next_attempt_at=from_db(row.next_attempt_at),
        lease_until=from_db_opt(row.lease_until),
        delivered_at=from_db_opt(row.delivered_at),
        last_error=row.last_error,
        document_size=int(row.document_size or 0),
    )


def list_rows(
    conn: Connection,
    state: str | None = None,
    user_id: str | None = None,
    device_id: str | None = None,
    limit: int = 50,
) -> list[OutboxRow]:
    """Newest rows first, filtered by state (or ``retrying``), user and CH (hex ids)."""
    query = sa.select(*_ROW_COLUMNS).order_by(outbox.c.id.desc()).limit(limit)
    if state is not None:
        if state not in LIST_STATES:
            raise InvalidValueError(
                f"outbox state {state!r} is not one of {', '.join(sorted(LIST_STATES))}"
            )
        if state == "retrying":
            query = query.where(outbox.c.state == "pending", outbox.c.attempts > 0)
        else:
            query = query.where(outbox.c.state == state)
    if user_id is not None:
        query = query.where(outbox.c.user_id == user_id)
    if device_id is not None:
        query = query.where(outbox.c.device_id == device_id)
    return [row_of(row) for row in conn.execute(query)]


def get(conn: Connection, key: int | str) -> OutboxDetail | None:
    """One row by outbox id or ResponseID, with its document and attempts; None if unknown."""
    outbox_id = _id_of(conn, key)
    if outbox_id is None:
        return None
    row = conn.execute(
        sa.select(*_ROW_COLUMNS, outbox.c.document).where(outbox.c.id == outbox_id)
    ).one()
    attempts = conn.execute(
        sa.select(delivery_attempts)
        .where(delivery_attempts.c.outbox_id == outbox_id)
        .order_by(delivery_attempts.c.id)
    )
    return OutboxDetail(
        row=row_of(row), document=bytes(row.document), attempts=attempt_rows(attempts)
    )


def attempt_rows(rows: Iterable[Any]) -> tuple[AttemptRow, ...]:
    """Rows of ``delivery_attempts`` (or its archive) as AttemptRows."""
    return tuple(
        AttemptRow(
            attempted_at=from_db(a.attempted_at),
            outcome=a.outcome,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
        )
        for a in rows
    )


def counts(conn: Connection) -> OutboxCounts:
    """Rows per state, plus the retrying part of pending."""
    tried = sa.case((outbox.c.attempts > 0, 1), else_=0)
    rows = conn.execute(
        sa.select(outbox.c.state, sa.func.count(), sa.func.sum(tried)).group_by(outbox.c.state)
    )
    by_state = {state: (int(count), int(retried or 0)) for state, count, retried in rows}
    pending, retrying = by_state.get("pending", (0, 0))
    return {
        "pending": pending,
        "retrying": retrying,
        "delivered": by_state.get("delivered", (0, 0))[0],
        "dead": by_state.get("dead", (0, 0))[0],
        "parked": by_state.get("parked", (0, 0))[0],
    }


def counts_by(conn: Connection) -> list[CountRow]:
    """Rows per (alert code, user, state), with the retrying part of pending groups."""
    tried = sa.case((sa.and_(outbox.c.state == "pending", outbox.c.attempts > 0), 1), else_=0)
    rows = conn.execute(
        sa.select(
            outbox.c.alert_code,
            outbox.c.user_id,
            outbox.c.state,
            sa.func.count(),
            sa.func.sum(tried),
        )
        .group_by(outbox.c.alert_code, outbox.c.user_id, outbox.c.state)
        .order_by(outbox.c.alert_code, outbox.c.user_id, outbox.c.state)
    )
    return [
        CountRow(alert_code=code, user_id=user, state=state, count=int(n), retrying=int(r or 0))
        for code, user, state, n, r in rows
    ]


def oldest_due_age(conn: Connection, now: datetime) -> float | None:
    """Seconds the longest-waiting due pending row has been due; None when nothing is due."""
    at = to_db(now)
    oldest = conn.execute(
        sa.select(sa.func.min(outbox.c.next_attempt_at)).where(
            outbox.c.state == "pending", outbox.c.next_attempt_at <= at
        )
    ).scalar()
    if oldest is None:
        return None
    return max(0.0, (at - from_db(oldest)).total_seconds())


def next_due_at(conn: Connection) -> datetime | None:
    """When the earliest pending row falls due (for "N still pending, next at ..." messages)."""
    earliest = conn.execute(
        sa.select(sa.func.min(outbox.c.next_attempt_at)).where(outbox.c.state == "pending")
    ).scalar()
    return from_db_opt(earliest)
