"""Read-only aggregates for the DSP dashboard and the Prometheus collector.

Both read the same figures, so they are computed once, here: outcomes over
time, delivery health per Service User, intake-to-delivery latency, delivery
attempts by outcome. Every function is one or two aggregate queries; the
latency figures read the rows delivered within a recent window (bounded by
``limit``), since SQLite and PostgreSQL share no way to subtract times in SQL.

The pure helpers (:func:`choose_step`, :func:`quantile`,
:func:`cumulative_outcomes`) take plain values so they can be tested alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import ActivationResult
from chfw.dsp.store.outbox.report import counts_by, oldest_undelivered
from chfw.dsp.store.schema import (
    archived_attempt_totals,
    audit_log,
    delivery_attempts,
    firmware_history,
    outbox,
    service_users,
)
from chfw.shared.db.sql import from_db, to_db

#: The outcome categories of the timeline, in legend order. ``pending``: future-dated
#: activations accepted whose outcome alert has not come yet.
OUTCOME_CATEGORIES = (
    ActivationResult.SUCCESS.value,
    ActivationResult.NO_IMAGE_HELD.value,
    ActivationResult.HASH_MISMATCH.value,
    ActivationResult.ACTIVATION_FAILURE.value,
    "pending",
)
_NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
_DAY = 86400
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_LIMIT = 200_000  # deliveries read per latency computation, newest first


# --- pure helpers -----------------------------------------------------------------------------


def choose_step(span_seconds: float, max_points: int = 120) -> int:
    """The smallest "round" bucket width (1 s, 5 s, 1 min, 1 h, n days...) giving ≤ max_points."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    needed = max(1.0, span_seconds / max_points)
    for step in _NICE_STEPS:
        if step >= needed:
            return step
    return _DAY * math.ceil(needed / _DAY)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted ``values``; None when there are none."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is not between 0 and 1")
    if not values:
        return None
    rank = max(1, math.ceil(q * len(values)))
    return values[rank - 1]


@dataclass(frozen=True, slots=True)
class Timeline:
    """Cumulative outcome counts at the end of each bucket (``times``), per category.

    ``times[0]`` is the start of the first bucket, where every count is 0.
    """

    step_seconds: int
    times: tuple[datetime, ...]
    series: dict[str, tuple[int, ...]]

    @property
    def totals(self) -> dict[str, int]:
        """The latest value of each series (``pending``: still pending now)."""
        return {name: values[-1] if values else 0 for name, values in self.series.items()}


def cumulative_outcomes(
    start: datetime, step: int, rows: Iterable[tuple[int, str, str, int]]
) -> Timeline:
    """Build the timeline from ``(bucket, result, source, count)`` groups (pure).

    ``pending`` is the accepted (future-dated) activations so far minus the
    outcomes that arrived as alerts so far: each alert closes one accepted
    activation. It never goes below zero (an alert without its "accepted").
    """
    by_bucket: dict[int, dict[str, int]] = {}
    last = 0
    for bucket, result, source, count in rows:
        cell = by_bucket.setdefault(int(bucket), {})
        cell[result] = cell.get(result, 0) + int(count)
        if source == "alert":
            cell["_closed"] = cell.get("_closed", 0) + int(count)
        last = max(last, int(bucket))
    running = dict.fromkeys((*OUTCOME_CATEGORIES, ActivationResult.ACCEPTED.value, "_closed"), 0)
    series: dict[str, list[int]] = {name: [0] for name in OUTCOME_CATEGORIES}
    times = [start]
    for bucket in range(last + 1) if by_bucket else ():
        for name, count in by_bucket.get(bucket, {}).items():
            running[name] = running.get(name, 0) + count
        for name in OUTCOME_CATEGORIES[:-1]:
            series[name].append(running[name])
        pending = running[ActivationResult.ACCEPTED.value] - running["_closed"]
        series["pending"].append(max(0, pending))
        times.append(start + timedelta(seconds=step * (bucket + 1)))
    return Timeline(step, tuple(times), {k: tuple(v) for k, v in series.items()})


# --- outcomes over time -----------------------------------------------------------------------


def _epoch_seconds(conn: Connection, column: Any) -> Any:
    """Whole seconds since 1970 of a stored time, as an integer, in either dialect."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)
    return sa.cast(sa.func.strftime("%s", column), sa.Integer)


def outcome_timeline(conn: Connection, max_points: int = 120) -> Timeline:
    """Cumulative outcomes by when chfw recorded them, in at most ``max_points`` buckets."""
    first, last = conn.execute(
        sa.select(
            sa.func.min(firmware_history.c.recorded_at), sa.func.max(firmware_history.c.recorded_at)
        )
    ).one()
    if first is None:
        return Timeline(1, (), {name: () for name in OUTCOME_CATEGORIES})
    start = from_db(first).replace(microsecond=0)
    span = (from_db(last) - start).total_seconds()
    step = choose_step(span + 1, max_points)
    offset = int(start.timestamp())
    epoch = _epoch_seconds(conn, firmware_history.c.recorded_at)
    bucket = ((epoch - offset) // step).label("bucket")
    rows = conn.execute(
        sa.select(bucket, firmware_history.c.result, firmware_history.c.source, sa.func.count())
        .group_by(bucket, firmware_history.c.result, firmware_history.c.source)
        .order_by(bucket)
    )
    return cumulative_outcomes(start, step, ((int(b), r, s, int(n)) for b, r, s, n in rows))


# --- delivery health --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserDelivery:
    """One Service User's alerts in the outbox, and how fast they have been delivered lately.

    ``waiting`` + ``retrying`` is the outbox's ``pending`` state; the latency
    quantiles are over deliveries in the recent window, None when there were none.
    """

    user_id: str  # upper-case hex, as stored
    name: str | None  # None: not (or no longer) a Service User
    waiting: int
    retrying: int
    dead: int
    delivered: int
    delivered_recently: int
    p50_seconds: float | None
    p99_seconds: float | None
    # Seconds since the oldest pending alert was made (None: nothing pending): the same
    # figure as chfw_outbox_oldest_undelivered_age_seconds.
    oldest_undelivered_seconds: float | None = None
    suspended_reason: str | None = None  # why delivery is suspended; None: it is not

    @property
    def pending(self) -> int:
        return self.waiting + self.retrying

    @property
    def suspended(self) -> bool:
        return self.suspended_reason is not None


def recent_latencies(
    conn: Connection, now: datetime, window: timedelta = LATENCY_WINDOW, limit: int = LATENCY_LIMIT
) -> dict[str, list[float]]:
    """Intake-to-delivery seconds of alerts delivered within ``window`` before ``now``, per user
    (sorted ascending); at most ``limit`` deliveries, the newest."""
    rows = conn.execute(
        sa.select(outbox.c.user_id, outbox.c.created_at, outbox.c.delivered_at)
        .where(outbox.c.state == "delivered", outbox.c.delivered_at >= to_db(now - window))
        .order_by(outbox.c.delivered_at.desc())
        .limit(limit)
    )
    out: dict[str, list[float]] = {}
    for user, created, delivered in rows:
        seconds = (from_db(delivered) - from_db(created)).total_seconds()
        out.setdefault(user, []).append(max(0.0, seconds))
    for values in out.values():
        values.sort()
    return out


def delivery_health(
    conn: Connection, now: datetime, window: timedelta = LATENCY_WINDOW
) -> list[UserDelivery]:
    """Every user with alerts in the outbox, or suspended, by User ID."""
    rows = counts_by(conn)
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        cell = counts.setdefault(row.user_id, {})
        if row.state == "pending":
            cell["retrying"] = cell.get("retrying", 0) + row.retrying
            cell["waiting"] = cell.get("waiting", 0) + row.count - row.retrying
        else:
            cell[row.state] = cell.get(row.state, 0) + row.count
    oldest = oldest_undelivered(rows, now)
    known = {
        row.user_id: row
        for row in conn.execute(
            sa.select(
                service_users.c.user_id, service_users.c.name, service_users.c.suspended_reason
            ).where(
                sa.or_(
                    service_users.c.user_id.in_(sorted(counts)),
                    service_users.c.suspended_at.is_not(None),
                )
            )
        )
    }
    for user, found in known.items():
        if found.suspended_reason is not None:
            counts.setdefault(user, {})
    latencies = recent_latencies(conn, now, window)
    return [
        UserDelivery(
            user_id=user,
            name=known[user].name if user in known else None,
            waiting=cell.get("waiting", 0),
            retrying=cell.get("retrying", 0),
            dead=cell.get("dead", 0),
            delivered=cell.get("delivered", 0),
            delivered_recently=len(latencies.get(user, [])),
            p50_seconds=quantile(latencies.get(user, []), 0.5),
            p99_seconds=quantile(latencies.get(user, []), 0.99),
            oldest_undelivered_seconds=oldest.get(user),
            suspended_reason=known[user].suspended_reason if user in known else None,
        )
        for user, cell in sorted(counts.items())
    ]


def suspended_users(conn: Connection) -> dict[str, str | None]:
    """Every registered Service User (hex) and why its delivery is suspended (None: it is
    not)."""
    rows = conn.execute(sa.select(service_users.c.user_id, service_users.c.suspended_reason))
    return {user: reason for user, reason in rows}


def attempts_by_outcome(conn: Connection) -> dict[str, int]:
    """Every delivery attempt ever recorded, by outcome (delivered, retry, rejected, dead),
    archived ones included."""
    rows = conn.execute(
        sa.select(delivery_attempts.c.outcome, sa.func.count()).group_by(
            delivery_attempts.c.outcome
        )
    )
    found = {str(outcome): int(n) for outcome, n in rows}
    for outcome, n in conn.execute(sa.select(archived_attempt_totals)):
        found[outcome] = found.get(outcome, 0) + int(n)
    return found


# --- a CH's alerts ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubAttempt:
    """One delivery attempt of one of a CH's alerts."""

    response_id: str
    attempted_at: datetime
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: float | None


def attempts_for_device(conn: Connection, device_hex: str, limit: int = 500) -> list[HubAttempt]:
    """Delivery attempts of a CH's alerts, newest first."""
    rows = conn.execute(
        sa.select(
            outbox.c.response_id,
            delivery_attempts.c.attempted_at,
            delivery_attempts.c.outcome,
            delivery_attempts.c.status_code,
            delivery_attempts.c.error,
            delivery_attempts.c.duration_ms,
        )
        .select_from(delivery_attempts.join(outbox, outbox.c.id == delivery_attempts.c.outbox_id))
        .where(outbox.c.device_id == device_hex)
        .order_by(delivery_attempts.c.id.desc())
        .limit(limit)
    )
    return [
        HubAttempt(
            r.response_id, from_db(r.attempted_at), r.outcome, r.status_code, r.error, r.duration_ms
        )
        for r in rows
    ]


# --- operator actions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replay:
    """One audited replay of dead letters."""

    at: datetime
    actor: str
    count: int


def recent_replays(conn: Connection, limit: int = 10) -> list[Replay]:
    """The newest ``outbox.replay`` audit entries first."""
    rows = conn.execute(
        sa.select(audit_log.c.at, audit_log.c.actor, audit_log.c.detail)
        .where(audit_log.c.action == "outbox.replay")
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    return [Replay(from_db(at), actor, _count(detail)) for at, actor, detail in rows]


def _count(detail: Mapping[str, Any] | None) -> int:
    value = (detail or {}).get("count", 0)
    return value if isinstance(value, int) else 0
