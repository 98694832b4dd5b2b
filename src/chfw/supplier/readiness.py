"""HAN readiness: which CHs run firmware at or above a version, for the next HAN-device step.

Versions are compared as the octets they are, by :class:`FirmwareVersion`'s
own ordering (one unsigned big-endian number, a shorter version left-padded
with zero octets: ``0102`` < ``00000103`` < ``0200``; equal numbers of
different lengths order by length, so ``0102`` < ``000102``).

How, for millions of CHs: SQL cannot compare hex text numerically across
lengths (``'0200' < '00000103'`` as text), and re-implementing the ordering
in SQL would mean a second definition to keep in step. But an estate runs a
handful of distinct versions, not millions. So the database does what it is
good at -- one ``GROUP BY active_version`` pass counts the CHs per version
(:func:`chfw.supplier.backoffice.firmware_distribution`) -- the versions are
compared in Python with the one documented ordering, and the CHs are then
selected with ``active_version IN (<the qualifying versions>)`` (or ``NOT
IN`` the others, whichever list is shorter), streamed in Device ID order.
Counting needs no second query at all. CHs whose version is unknown (an
N999 whose version is still being fetched) are never "ready"; they are
counted apart. So are CHs whose version, recorded exactly as signed, is no
hex number at all (DUIS allows any 1 to 8 characters): they cannot be
compared, so they are neither ready nor below (``unrecognised``). A hex
version of odd length is compared as the number it spells (``123`` as
``0123``). CHs of the supplier's own estate (``chfw receiver hubs import``,
:mod:`chfw.supplier.estate`) that never sent an alert are ``unknown`` too
(``never_alerted`` of them).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.exceptions import InvalidValueError
from chfw.shared.db.sql import from_db
from chfw.supplier import backoffice, estate
from chfw.supplier.schema import bo_hubs

CSV_COLUMNS = ("device_id", "active_firmware_version", "changed_at")
_STREAM_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Readiness:
    """How the back office's CHs stand against a minimum version."""

    min_version: FirmwareVersion
    ready_versions: dict[str, int]  # version (hex) at or above the minimum -> CHs on it
    below_versions: dict[str, int]
    unknown: int  # CHs whose active version is not known yet (never_alerted included)
    unrecognised_versions: dict[str, int] = field(default_factory=dict)  # not hex: no order
    never_alerted: int = 0  # imported into the estate, no alert received

    @property
    def ready(self) -> int:
        return sum(self.ready_versions.values())

    @property
    def below(self) -> int:
        return sum(self.below_versions.values())

    @property
    def unrecognised(self) -> int:
        return sum(self.unrecognised_versions.values())

    @property
    def total(self) -> int:
        return self.ready + self.below + self.unknown + self.unrecognised

    def to_json(self) -> dict[str, object]:
        return {
            "min_version": self.min_version.hex,
            "ready": self.ready,
            "below": self.below,
            "unknown": self.unknown,
            "unknown_never_alerted": self.never_alerted,
            "total": self.total,
            "ready_versions": dict(sorted(self.ready_versions.items())),
            "below_versions": dict(sorted(self.below_versions.items())),
            "unrecognised": self.unrecognised,
            "unrecognised_versions": dict(sorted(self.unrecognised_versions.items())),
        }


@dataclass(frozen=True, slots=True)
class ReadyHub:
    device_id: DeviceId
    active_version: str  # as recorded (as signed)
    changed_at: datetime


def comparable(text: str) -> FirmwareVersion | None:
    """A recorded version as octets to compare, or None when it is not a hex number."""
    digits = text.strip()
    try:
        return FirmwareVersion.parse(digits if len(digits) % 2 == 0 else "0" + digits)
    except InvalidValueError:
        return None


def split_versions(
    distribution: Mapping[str | None, int], min_version: FirmwareVersion, never_alerted: int = 0
) -> Readiness:
    """Sort a per-version count into ready / below / unknown / unrecognised (pure);
    ``never_alerted`` imported CHs without an alert are unknown too."""
    ready: dict[str, int] = {}
    below: dict[str, int] = {}
    unrecognised: dict[str, int] = {}
    unknown = never_alerted
    for text, count in distribution.items():
        version = None if text is None else comparable(text)
        if text is None:
            unknown += count
        elif version is None:
            unrecognised[text] = count
        elif version >= min_version:
            ready[text] = count
        else:
            below[text] = count
    return Readiness(min_version, ready, below, unknown, unrecognised, never_alerted)


def readiness(conn: Connection, min_version: FirmwareVersion) -> Readiness:
    """Counts only: one aggregate query over the back office's CHs, one over the estate."""
    distribution = backoffice.firmware_distribution(conn)
    return split_versions(distribution, min_version, estate.never_alerted(conn))


def _ready_filter(summary: Readiness) -> sa.ColumnElement[bool]:
    """The shorter of ``IN (ready)`` and ``NOT IN (below)``: few parameters either way."""
    ready = sorted(summary.ready_versions)
    below = sorted({*summary.below_versions, *summary.unrecognised_versions})
    if not ready:
        return sa.false()
    if len(ready) <= len(below):
        return bo_hubs.c.active_version.in_(ready)
    return sa.and_(bo_hubs.c.active_version.is_not(None), bo_hubs.c.active_version.not_in(below))


def ready_hubs(conn: Connection, summary: Readiness) -> Iterator[ReadyHub]:
    """The CHs ``summary`` counted as ready, in Device ID order, streamed.

    Takes the :func:`readiness` answer rather than the version so that the
    list and the counts printed beside it come from the same versions.
    """
    query = (
        sa.select(bo_hubs.c.device_id, bo_hubs.c.active_version, bo_hubs.c.changed_at)
        .where(_ready_filter(summary))
        .order_by(bo_hubs.c.device_id)
        .execution_options(yield_per=_STREAM_CHUNK)
    )
    for row in conn.execute(query):
        version = comparable(row.active_version)
        if version is None or version < summary.min_version:  # first seen after the count
            continue
        yield ReadyHub(
            device_id=DeviceId.parse(row.device_id),
            active_version=row.active_version,
            changed_at=from_db(row.changed_at),
        )


def write_csv(hubs: Iterator[ReadyHub], out: TextIO) -> int:
    """CSV for planning tools: device_id (DUIS form), active_firmware_version, changed_at."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    rows = 0
    for hub in hubs:
        writer.writerow((str(hub.device_id), hub.active_version, hub.changed_at.isoformat()))
        rows += 1
    return rows
