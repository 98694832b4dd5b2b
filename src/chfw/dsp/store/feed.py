"""The Service Users' catch-up feed: changes of active firmware on their CHs, and CHs gained.

**Positions.** Every feed entry -- a history row that changed a CH's active
firmware, or a supplier gain -- gets a position (``feed_seq``) only *after* it
is committed, from :func:`sequence`: under the ``feed_seq`` counter's lock it
numbers the rows it can see that have none, in id order, and commits. Rows are
therefore numbered in the order they became visible, and a reader that has seen
position *p* has seen every position below it, for good. Ordering by the rows'
own ids would not do: ids are drawn when a row is inserted, not when it
commits, so on PostgreSQL a transaction that commits late leaves a lower id
behind a higher one a reader has already passed, and a cursor on the id would
skip it. A hub's own rows keep their order (they are written under the hub's
row lock, so their ids, commits and positions agree).

**Gains before changes.** A gain carries the CH's firmware as the import read
it under the hub's lock. A change committed after the gain must come after it
in the feed, so each numbering step takes every visible gain before any
visible history row of the same snapshot; a change committed before the gain
may then follow it too, naming the version the gain already had (harmless).

**Who sees what.** A user sees a CH's entries while it is one of the CH's
Import, Export or Gas Suppliers (as for the inventory read), and only from its
latest gain of the CH: the gain itself, then the changes after it. A CH the
user lost disappears from the feed altogether; gained again, it comes back as
a new gain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import Decision, DeviceId, FirmwareVersion, UserId
from chfw.dsp.store.schema import counters, firmware_history, hubs, meter_points, supplier_gains
from chfw.shared.db.bulk import driver_time, execute_many, insert_rows, lookup
from chfw.shared.db.sql import IN_LIST_MAX, among, chunked, from_db_opt, insert_for
from chfw.shared.db.types import UTC_TIME

COUNTER = "feed_seq"
CHUNK = 5000
MAX_HISTORY_CHUNKS = 20  # per call: a reader is not held up numbering an endless backlog
CHANGES = (Decision.NEW_VERSION.value, Decision.VERSION_NOT_CARRIABLE.value)
ACTIVATION = "activation"
GAINED = "gained"

Pair = tuple[str, str]
"""(user hex, device hex): the user is an Import, Export or Gas Supplier of the CH."""


@dataclass(frozen=True, slots=True)
class FeedChange:
    """One entry of a user's feed."""

    position: int
    device_id: DeviceId
    firmware_version: FirmwareVersion | None  # None: a gained CH never reported
    changed_at: datetime | None  # when the version became active
    reason: str  # ACTIVATION | GAINED


@dataclass(frozen=True, slots=True)
class FeedPage:
    """Entries after a position, and the position to read after next."""

    changes: list[FeedChange]
    last: int  # every position up to here is read: the next cursor


def holders(conn: Connection, device_hexes: Iterable[str]) -> set[Pair]:
    """Who supplies these CHs now: every (user, CH) pair over their meter points."""
    found: set[Pair] = set()
    for chunk in chunked(sorted(set(device_hexes)), IN_LIST_MAX):
        for device, *users in lookup(conn, meter_points, _SUPPLIERS, "device_id", chunk):
            found.update((user, device) for user in users if user is not None)
    return found


_SUPPLIERS = ("device_id", "import_supplier", "export_supplier", "gas_supplier")


def devices_of_points(conn: Connection, identifiers: Iterable[str]) -> set[str]:
    """The CHs these meter points are on now (those not yet in the estate are left out)."""
    found: set[str] = set()
    for chunk in chunked(sorted(set(identifiers)), IN_LIST_MAX):
        found.update(
            row[0] for row in lookup(conn, meter_points, ("device_id",), "identifier", chunk)
        )
    return found


def record_gains(
    conn: Connection, before: set[Pair], device_hexes: Iterable[str], at: datetime
) -> int:
    """Write a gain for every pair holding now over these CHs that did not in ``before``.

    Each CH's firmware is read with its row locked (PostgreSQL), so an
    activation processed concurrently is either in the version written or
    committed after the gain. Returns how many gains were written.
    """
    new = sorted(holders(conn, device_hexes) - before, key=lambda pair: (pair[1], pair[0]))
    if not new:
        return 0
    states = _locked_states(conn, sorted({device for _, device in new}))
    gained_at = driver_time(conn, supplier_gains.c.gained_at, at)
    since_column = supplier_gains.c.firmware_changed_at
    rows = []
    for user, device in new:
        version, since, history_id = states.get(device, (None, None, 0))
        rows.append(
            (user, device, version, driver_time(conn, since_column, since), gained_at, history_id)
        )
    insert_rows(conn, supplier_gains, _GAIN_COLUMNS, rows)
    return len(rows)


_GAIN_COLUMNS = (
    "user_id",
    "device_id",
    "firmware_version",
    "firmware_changed_at",
    "gained_at",
    "history_id",
)


def _locked_states(conn: Connection, devices: Sequence[str]) -> dict[str, tuple[Any, Any, int]]:
    """Each CH's firmware, when it became active and its newest history id, with the hub
    rows locked first (PostgreSQL): no outcome for them is being processed meanwhile."""
    states: dict[str, tuple[Any, Any, int]] = {}
    for chunk in chunked(devices, 900):
        query = sa.select(hubs.c.device_id, hubs.c.active_firmware, hubs.c.firmware_changed_at)
        query = query.where(among(conn, hubs.c.device_id, chunk)).order_by(hubs.c.device_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        rows = conn.execute(query).all()
        newest = dict(
            conn.execute(
                sa.select(firmware_history.c.device_id, sa.func.max(firmware_history.c.id))
                .where(among(conn, firmware_history.c.device_id, chunk))
                .group_by(firmware_history.c.device_id)
            ).all()
        )
        for device, version, since in rows:
            states[device] = (version, from_db_opt(since), int(newest.get(device) or 0))
    return states


def sequence(conn: Connection) -> int:
    """Number the committed entries that have no position yet; returns the end of the feed.

    Every position below the returned end is final once this transaction
    commits. Concurrent callers queue on the counter's row lock.
    """
    start = _lock_counter(conn)
    position = start
    for _ in range(MAX_HISTORY_CHUNKS):
        gains, history = _unnumbered(conn)
        position = _number(conn, supplier_gains, gains, position)
        if len(gains) >= CHUNK:
            continue  # more gains may be visible: all of them before any history row
        position = _number(conn, firmware_history, history, position)
        if len(history) < CHUNK:
            break
    if position != start:
        conn.execute(
            sa.update(counters).where(counters.c.name == COUNTER).values(next_value=position)
        )
    return position


def numbered_end(conn: Connection) -> int | None:
    """The end of the feed if every committed entry already has a position, else None (then
    :func:`sequence` is due). Reads only, so an idle feed's readers take no write lock.

    The counter is read first: every position below it was committed before, and if no
    entry without a position is visible afterwards, none committed meanwhile is missed.
    """
    value = conn.execute(
        sa.select(counters.c.next_value).where(counters.c.name == COUNTER)
    ).scalar_one_or_none()
    for table in (supplier_gains, firmware_history):
        waiting = sa.select(table.c.id).where(table.c.feed_seq.is_(None)).limit(1)
        if conn.execute(waiting).first() is not None:
            return None
    return 1 if value is None else int(value)


def _lock_counter(conn: Connection) -> int:
    """The counter's next value, its row locked until the transaction ends (created at 1)."""
    touch = (
        sa.update(counters)
        .where(counters.c.name == COUNTER)
        .values(next_value=counters.c.next_value)
        .returning(counters.c.next_value)
    )
    value = conn.execute(touch).scalar_one_or_none()
    if value is None:
        conn.execute(
            insert_for(conn, counters)
            .values(name=COUNTER, next_value=1)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = conn.execute(touch).scalar_one()
    return int(value)


def _unnumbered(conn: Connection) -> tuple[list[int], list[int]]:
    """Ids of gains and of history rows without a position, from one snapshot (one statement)."""
    parts = []
    for kind, table in ((0, supplier_gains), (1, firmware_history)):
        inner = (
            sa.select(table.c.id)
            .where(table.c.feed_seq.is_(None))
            .order_by(table.c.id)
            .limit(CHUNK)
            .subquery()
        )
        parts.append(sa.select(sa.literal(kind).label("kind"), inner.c.id))
    found: tuple[list[int], list[int]] = ([], [])
    for kind, row_id in conn.execute(sa.union_all(*parts)):
        found[int(kind)].append(int(row_id))
    for ids in found:
        ids.sort()
    return found


def _number(conn: Connection, table: sa.Table, ids: Sequence[int], start: int) -> int:
    if ids:
        stmt = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values(feed_seq=sa.bindparam("b_seq"))
        )
        execute_many(conn, stmt, [{"b_id": i, "b_seq": start + n} for n, i in enumerate(ids)])
    return start + len(ids)


def _holds(user: str, device: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """The user supplies the CH now (Import, Export or Gas Supplier of a meter point on it)."""
    return sa.exists().where(
        meter_points.c.device_id == device,
        sa.or_(
            meter_points.c.import_supplier == user,
            meter_points.c.export_supplier == user,
            meter_points.c.gas_supplier == user,
        ),
    )


def _latest_gain(user: str, device: sa.ColumnElement[str]) -> sa.ScalarSelect[Any]:
    """The position of the user's latest numbered gain of the CH (NULL: none)."""
    latest = supplier_gains.alias("latest")
    return (
        sa.select(sa.func.max(latest.c.feed_seq))
        .where(latest.c.user_id == user, latest.c.device_id == device)
        .scalar_subquery()
    )


def _gained_after(user: str, device: sa.ColumnElement[str]) -> sa.ScalarSelect[Any]:
    """The CH's newest history id when the user's latest numbered gain of it was written:
    its changes after that are the user's (NULL: never gained, none are)."""
    gain = supplier_gains.alias("gain")
    return (
        sa.select(gain.c.history_id)
        .where(
            gain.c.user_id == user,
            gain.c.device_id == device,
            gain.c.feed_seq == _latest_gain(user, gain.c.device_id),
        )
        .scalar_subquery()
    )


def read(conn: Connection, user_id: UserId, after: int, end: int, limit: int) -> FeedPage:
    """The user's entries at positions after ``after`` and below ``end``, up to ``limit``."""
    user = user_id.hex
    g, h = supplier_gains, firmware_history
    gains = conn.execute(
        sa.select(g.c.feed_seq, g.c.device_id, g.c.firmware_version, g.c.firmware_changed_at)
        .where(
            g.c.user_id == user,
            g.c.feed_seq > after,
            g.c.feed_seq < end,
            g.c.feed_seq == _latest_gain(user, g.c.device_id),
            _holds(user, g.c.device_id),
        )
        .order_by(g.c.feed_seq)
        .limit(limit)
    ).all()
    changes = conn.execute(
        sa.select(
            h.c.feed_seq,
            h.c.device_id,
            sa.func.coalesce(h.c.version_after, h.c.reported_version),
            sa.func.coalesce(h.c.occurred_at, h.c.recorded_at, type_=UTC_TIME),
        )
        .where(
            h.c.feed_seq > after,
            h.c.feed_seq < end,
            h.c.decision.in_(CHANGES),
            h.c.id > _gained_after(user, h.c.device_id),
            _holds(user, h.c.device_id),
        )
        .order_by(h.c.feed_seq)
        .limit(limit)
    ).all()
    merged = sorted(
        [(row, GAINED) for row in gains] + [(row, ACTIVATION) for row in changes],
        key=lambda item: int(item[0][0]),
    )[:limit]
    entries = [
        FeedChange(
            position=int(seq),
            device_id=DeviceId.parse(device),
            firmware_version=FirmwareVersion.parse(version) if version else None,
            changed_at=from_db_opt(since),
            reason=reason,
        )
        for (seq, device, version, since), reason in merged
    ]
    last = entries[-1].position if len(entries) == limit else max(after, end - 1)
    return FeedPage(entries, last)
