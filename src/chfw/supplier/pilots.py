"""Firmware pilots: a target version, a cohort of CHs, and how far the cohort has got.

What counts (the supplier only ever hears of successes, through N64 or an
N999 whose version was fetched, so "failed" and "not yet" cannot be told
apart):

- a cohort CH has **activated** when the back office has a firmware event
  for it carrying the target version -- at any time, also before the pilot
  was defined, so a pilot set up after its roll-out began still counts the
  CHs already done. Its activation time is the alert time (the hub's
  activation as the DSP reported it, not when the alert arrived) of the
  earliest such event;
- each CH's **status**: ``activated`` (reached the target and still on it),
  ``moved_on`` (reached it, now on another version: a later release or a
  roll-back), ``version_pending`` (an N999 came and its version is still
  being fetched from the DSP) or ``not_yet`` (anything else: no alert, or
  another version);
- **time to 50 % / 90 %**: from the first activation to the activation that
  brought the count to at least that share of the cohort (``ceil(n * p)``
  CHs), or none while the share is not reached.

The progress figures are computed by :func:`progress` (pure) from the
cohort's member states, which :func:`member_states` streams from the
database in one query.
"""

from __future__ import annotations

import csv
import enum
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.exceptions import InvalidValueError, StoreError
from chfw.shared.db.sql import chunked, from_db, from_db_opt, insert_for, to_db
from chfw.supplier.schema import bo_firmware_events, bo_hubs, bo_pilot_members, bo_pilots

CHUNK = 5000
MILESTONES = (50, 90)  # per cent of the cohort
EXPORT_COLUMNS = ("device_id", "active_version", "activated_at", "status")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._\-]{0,99}")


class MemberStatus(enum.Enum):
    """Where one cohort CH stands against the pilot's target."""

    ACTIVATED = "activated"
    MOVED_ON = "moved_on"
    VERSION_PENDING = "version_pending"
    NOT_YET = "not_yet"


@dataclass(frozen=True, slots=True)
class Pilot:
    name: str
    target_version: FirmwareVersion
    description: str | None
    created_at: datetime
    cohort_size: int


@dataclass(frozen=True, slots=True)
class MemberState:
    """A cohort CH as the back office knows it."""

    device_id: DeviceId
    active_version: str | None  # upper-case hex; None: no alert yet, or version being fetched
    lookup_pending: bool
    activated_at: datetime | None  # alert time of the first event carrying the target

    def status(self, target: FirmwareVersion) -> MemberStatus:
        if self.activated_at is not None:
            if self.active_version == target.hex:
                return MemberStatus.ACTIVATED
            return MemberStatus.MOVED_ON
        if self.lookup_pending:
            return MemberStatus.VERSION_PENDING
        return MemberStatus.NOT_YET


@dataclass(frozen=True, slots=True)
class Milestone:
    """When a share of the cohort had activated, and how long after the first activation."""

    percent: int
    needed: int  # CHs that make up this share: ceil(cohort * percent / 100)
    reached_at: datetime | None
    after_first: timedelta | None


@dataclass(frozen=True, slots=True)
class PilotProgress:
    cohort: int
    statuses: dict[MemberStatus, int]
    first_activation: datetime | None
    last_activation: datetime | None
    milestones: tuple[Milestone, ...]
    series: tuple[tuple[datetime, int], ...]  # (time, CHs activated by then), one point per time

    @property
    def activated(self) -> int:
        """CHs that reached the target (including those that have since moved on)."""
        return self.statuses[MemberStatus.ACTIVATED] + self.statuses[MemberStatus.MOVED_ON]

    @property
    def not_yet(self) -> int:
        """CHs not (yet) known to have reached the target: failed or still to come."""
        return self.cohort - self.activated

    @property
    def share(self) -> float:
        return self.activated / self.cohort if self.cohort else 0.0

    def milestone(self, percent: int) -> Milestone:
        for milestone in self.milestones:
            if milestone.percent == percent:
                return milestone
        raise KeyError(percent)


def progress(
    target: FirmwareVersion,
    members: Iterable[MemberState],
    milestones: Sequence[int] = MILESTONES,
) -> PilotProgress:
    """The pilot's figures from its members' states (pure; keeps only activation times)."""
    statuses = dict.fromkeys(MemberStatus, 0)
    times: list[datetime] = []
    cohort = 0
    for member in members:
        cohort += 1
        statuses[member.status(target)] += 1
        if member.activated_at is not None:
            times.append(member.activated_at)
    times.sort()
    series: list[tuple[datetime, int]] = []
    for count, moment in enumerate(times, start=1):
        if series and series[-1][0] == moment:
            series[-1] = (moment, count)
        else:
            series.append((moment, count))
    first = times[0] if times else None
    return PilotProgress(
        cohort=cohort,
        statuses=statuses,
        first_activation=first,
        last_activation=times[-1] if times else None,
        milestones=tuple(_milestone(percent, cohort, times) for percent in milestones),
        series=tuple(series),
    )


def _milestone(percent: int, cohort: int, times: Sequence[datetime]) -> Milestone:
    needed = max(1, -(-cohort * percent // 100))  # ceil without floats
    if cohort == 0 or len(times) < needed:
        return Milestone(percent, needed, None, None)
    reached = times[needed - 1]
    return Milestone(percent, needed, reached, reached - times[0])


# -- storage ---------------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidValueError(
            f"pilot name {name!r} must be 1-100 letters, digits, spaces, '.', '_' or '-' "
            "and start with a letter or digit"
        )
    return name


def create_pilot(
    conn: Connection,
    name: str,
    target: FirmwareVersion,
    cohort: Sequence[DeviceId],
    now: datetime,
    description: str | None = None,
) -> Pilot:
    """Define a pilot and its cohort; StoreError if the name is taken or the cohort empty."""
    check_name(name)
    members = list(dict.fromkeys(cohort))
    if not members:
        raise InvalidValueError(f"pilot {name!r} has an empty cohort: give at least one CH")
    inserted = conn.execute(
        insert_for(conn, bo_pilots)
        .values(
            name=name,
            target_version=target.hex,
            description=description,
            created_at=to_db(now),
        )
        .on_conflict_do_nothing(index_elements=["name"])
    ).rowcount
    if not inserted:
        raise StoreError(f"pilot {name!r} already exists; choose another name")
    for chunk in chunked(members, CHUNK):
        conn.execute(
            sa.insert(bo_pilot_members), [{"pilot": name, "device_id": d.hex} for d in chunk]
        )
    return Pilot(name, target, description, from_db(to_db(now)), len(members))


@dataclass(frozen=True, slots=True)
class PilotChange:
    """What ``chfw pilot edit`` changes; None (or nothing to add/remove) leaves it as it is.
    An empty ``description`` removes it."""

    rename: str | None = None
    target: FirmwareVersion | None = None
    description: str | None = None
    add: tuple[DeviceId, ...] = ()
    remove: tuple[DeviceId, ...] = ()


def _rename(conn: Connection, pilot: Pilot, new_name: str) -> None:
    """A pilot's rows under a new name (members follow; the name is their key)."""
    check_name(new_name)
    taken = conn.execute(sa.select(bo_pilots.c.name).where(bo_pilots.c.name == new_name)).first()
    if taken is not None:
        raise StoreError(f"pilot {new_name!r} already exists; choose another name")
    conn.execute(
        sa.insert(bo_pilots).from_select(
            ["name", "target_version", "description", "created_at"],
            sa.select(
                sa.literal(new_name),
                bo_pilots.c.target_version,
                bo_pilots.c.description,
                bo_pilots.c.created_at,
            ).where(bo_pilots.c.name == pilot.name),
        )
    )
    conn.execute(
        sa.update(bo_pilot_members)
        .where(bo_pilot_members.c.pilot == pilot.name)
        .values(pilot=new_name)
    )
    conn.execute(sa.delete(bo_pilots).where(bo_pilots.c.name == pilot.name))


def edit_pilot(conn: Connection, name: str, change: PilotChange) -> tuple[Pilot, Pilot]:
    """Apply ``change`` to pilot ``name``: (before, after). The cohort may not end up empty."""
    before = get_pilot(conn, name)
    current = name
    if change.rename is not None and change.rename != name:
        _rename(conn, before, change.rename)
        current = change.rename
    values: dict[str, Any] = {}
    if change.target is not None:
        values["target_version"] = change.target.hex
    if change.description is not None:
        values["description"] = change.description or None
    if values:
        conn.execute(sa.update(bo_pilots).where(bo_pilots.c.name == current).values(**values))
    for chunk in chunked(dict.fromkeys(change.add), CHUNK):
        conn.execute(
            insert_for(conn, bo_pilot_members)
            .values([{"pilot": current, "device_id": d.hex} for d in chunk])
            .on_conflict_do_nothing(index_elements=["pilot", "device_id"])
        )
    for chunk in chunked(dict.fromkeys(change.remove), CHUNK):
        conn.execute(
            sa.delete(bo_pilot_members).where(
                bo_pilot_members.c.pilot == current,
                bo_pilot_members.c.device_id.in_([d.hex for d in chunk]),
            )
        )
    after = get_pilot(conn, current)
    if after.cohort_size == 0:
        raise InvalidValueError(f"pilot {name!r} would have an empty cohort; nothing changed")
    return before, after


def delete_pilot(conn: Connection, name: str) -> Pilot:
    """Remove a pilot and its cohort (the CHs' alerts and history stay)."""
    pilot = get_pilot(conn, name)
    conn.execute(sa.delete(bo_pilot_members).where(bo_pilot_members.c.pilot == name))
    conn.execute(sa.delete(bo_pilots).where(bo_pilots.c.name == name))
    return pilot


def _cohort_sizes() -> sa.Subquery:
    return (
        sa.select(bo_pilot_members.c.pilot, sa.func.count().label("size"))
        .group_by(bo_pilot_members.c.pilot)
        .subquery()
    )


def _pilots_query() -> sa.Select[Any]:
    sizes = _cohort_sizes()
    return sa.select(bo_pilots, sa.func.coalesce(sizes.c.size, 0).label("size")).select_from(
        bo_pilots.outerjoin(sizes, sizes.c.pilot == bo_pilots.c.name)
    )


def _pilot(row: Any) -> Pilot:
    return Pilot(
        name=row.name,
        target_version=FirmwareVersion.parse(row.target_version),
        description=row.description,
        created_at=from_db(row.created_at),
        cohort_size=int(row.size),
    )


def get_pilot(conn: Connection, name: str) -> Pilot:
    """The pilot called ``name``; StoreError naming the known pilots otherwise."""
    row = conn.execute(_pilots_query().where(bo_pilots.c.name == name)).first()
    if row is None:
        known = [pilot.name for pilot in list_pilots(conn)]
        raise StoreError(
            f"no pilot {name!r}"
            + (
                f" (pilots: {', '.join(known)})"
                if known
                else " (create one with `chfw pilot create`)"
            )
        )
    return _pilot(row)


def list_pilots(conn: Connection) -> list[Pilot]:
    return [_pilot(row) for row in conn.execute(_pilots_query().order_by(bo_pilots.c.name))]


def member_states(conn: Connection, pilot: Pilot) -> Iterator[MemberState]:
    """Every cohort CH's state, in Device ID order, streamed (one query)."""
    members, hubs, events = bo_pilot_members, bo_hubs, bo_firmware_events
    first_on_target = (
        sa.select(sa.func.min(events.c.alert_time))
        .where(
            events.c.device_id == members.c.device_id,
            events.c.firmware_version == pilot.target_version.hex,
        )
        .scalar_subquery()
    )
    query = (
        sa.select(
            members.c.device_id,
            hubs.c.active_version,
            hubs.c.lookup_pending,
            hubs.c.changed_at,
            first_on_target.label("activated_at"),
        )
        .select_from(members.outerjoin(hubs, hubs.c.device_id == members.c.device_id))
        .where(members.c.pilot == pilot.name)
        .order_by(members.c.device_id)
        .execution_options(yield_per=CHUNK)
    )
    target = pilot.target_version.hex
    for row in conn.execute(query):
        activated_at = from_db_opt(row.activated_at)
        if activated_at is None and row.active_version == target:
            activated_at = from_db(row.changed_at)  # on target without its event: belt and braces
        yield MemberState(
            device_id=DeviceId.parse(row.device_id),
            active_version=row.active_version,
            lookup_pending=bool(row.lookup_pending),
            activated_at=activated_at,
        )


def pilot_progress(conn: Connection, name: str) -> tuple[Pilot, PilotProgress]:
    pilot = get_pilot(conn, name)
    return pilot, progress(pilot.target_version, member_states(conn, pilot))


# -- output ----------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def progress_json(pilot: Pilot, figures: PilotProgress) -> dict[str, Any]:
    """The status as JSON-ready data (what `chfw pilot status --json` prints)."""
    return {
        "pilot": pilot.name,
        "target_version": pilot.target_version.hex,
        "description": pilot.description,
        "created_at": _iso(pilot.created_at),
        "cohort": figures.cohort,
        "activated": figures.activated,
        "not_yet": figures.not_yet,
        "share": round(figures.share, 6),
        "statuses": {status.value: n for status, n in figures.statuses.items()},
        "first_activation": _iso(figures.first_activation),
        "last_activation": _iso(figures.last_activation),
        "milestones": [
            {
                "percent": m.percent,
                "needed": m.needed,
                "reached_at": _iso(m.reached_at),
                "seconds_after_first": (
                    None if m.after_first is None else m.after_first.total_seconds()
                ),
            }
            for m in figures.milestones
        ],
        "series": [{"at": _iso(moment), "activated": count} for moment, count in figures.series],
    }


def write_export(pilot: Pilot, members: Iterable[MemberState], out: TextIO) -> int:
    """One CSV row per cohort CH (device_id, active_version, activated_at, status); row count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    rows = 0
    for member in members:
        writer.writerow(
            (
                str(member.device_id),
                member.active_version or "",
                _iso(member.activated_at) or "",
                member.status(pilot.target_version).value,
            )
        )
        rows += 1
    return rows
