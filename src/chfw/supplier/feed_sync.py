"""`chfw receiver sync`: catch up from the DSP's feed (``GET /su/v1/firmware``).

A supplier that gained a CH (change of supplier) or missed an alert reads the
DSP's catch-up feed (:mod:`chfw.dsp.intake.feed_api`) from where it last
stopped -- the cursor is kept in the back office (``bo_feed_cursors``, one per
DSP URL) -- and files each entry like an alert
(:func:`chfw.supplier.recording.file_versions`), with ``version_source``
'feed'. An entry is placed by when its version became active, against the
alert time of what the back office holds: it sets a CH only when it is newer
than the newest alert applied, so a feed entry never moves a CH back past an
alert it already has (and the alert for the same change, stamped when the DSP
processed it, never loses to its own feed entry).

Each page is filed and its cursor saved in one transaction: an interrupted
sync resumes after the last page filed, and a page read twice files nothing
twice (a feed entry's key is derived from its content).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.exceptions import ChfwError
from chfw.shared.db.sql import insert_for, to_db
from chfw.supplier.dsp_client import DspClient, snippet
from chfw.supplier.recording import VersionReport, file_versions
from chfw.supplier.schema import bo_feed_cursors

log = structlog.get_logger("chfw.supplier.feed_sync")

FEED_PATH = "/su/v1/firmware"
PAGE_SIZE = 500
SOURCE = "feed"  # version_source and alert_code of what the feed filed
REASONS = ("activation", "gained")


class FeedSyncError(ChfwError):
    """The DSP's feed could not be read or made no sense; nothing from that page was filed."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of the feed, checked."""

    device_id: DeviceId
    firmware_version: FirmwareVersion | None
    changed_at: datetime | None
    reason: str

    def key(self) -> str:
        """A stable key for the entry (its event's response_id): the same entry read twice
        is filed once."""
        content = "|".join(
            (
                self.device_id.hex,
                self.firmware_version.hex if self.firmware_version else "",
                self.changed_at.isoformat() if self.changed_at else "",
            )
        )
        return f"feed:{self.reason}:{hashlib.sha256(content.encode()).hexdigest()[:40]}"


def parse_entry(raw: Any) -> FeedEntry:
    """An entry from the feed's JSON; ValueError (or KeyError/TypeError) if it is not one."""
    if not isinstance(raw, dict):
        raise TypeError("an entry is not an object")
    reason = raw["reason"]
    if reason not in REASONS:
        raise ValueError(f"reason {reason!r} is not one of {', '.join(REASONS)}")
    version, changed = raw["firmware_version"], raw["changed_at"]
    at = None if changed is None else datetime.fromisoformat(changed)
    if at is not None and at.utcoffset() is None:
        raise ValueError(f"changed_at {changed!r} has no timezone")
    return FeedEntry(
        device_id=DeviceId.parse(raw["device_id"]),
        firmware_version=None if version is None else FirmwareVersion.parse(version),
        changed_at=at,
        reason=reason,
    )


class FeedClient(DspClient):
    """Reads the feed page by page (:class:`chfw.supplier.dsp_client.DspClient`)."""

    def page(self, since: str | None, limit: int = PAGE_SIZE) -> tuple[list[FeedEntry], str]:
        """The entries after ``since`` (None: from the beginning) and the cursor to read on."""
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since
        where = f"GET {self.base_url}{FEED_PATH}"
        try:
            response = self.get(FEED_PATH, params)
        except httpx.HTTPError as exc:
            raise FeedSyncError(f"{where}: {exc or type(exc).__name__}") from exc
        if response.status_code == 401:
            raise FeedSyncError(
                f"{where}: the DSP refused our token (401); issue a new one on the DSP with "
                "`chfw users token USER_ID`"
            )
        if response.status_code == 400 and since is not None:
            raise FeedSyncError(
                f"{where}: the DSP refused our saved cursor (400: {snippet(response)}); if its "
                "database was restored from a backup, read again with --from-start"
            )
        if response.status_code != 200:
            raise FeedSyncError(f"{where} answered {response.status_code}: {snippet(response)}")
        try:
            body = response.json()
            entries = [parse_entry(raw) for raw in body["changes"]]
            cursor = body["next"]
            if not isinstance(cursor, str) or not 0 < len(cursor) <= 64:
                raise ValueError("next is not a cursor")
        except (ValueError, KeyError, TypeError) as exc:
            raise FeedSyncError(
                f"{where}: the answer is not a feed page ({exc}): {snippet(response)}"
            ) from None
        return entries, cursor


@dataclass
class SyncStats:
    """What a sync did."""

    pages: int = 0
    entries: int = 0  # read from the feed
    applied: int = 0  # set a CH's active version
    gained: int = 0  # entries for CHs gained
    unknown: int = 0  # gained CHs the DSP has no version for: nothing to file
    cursor: str | None = None  # where the next sync starts

    def to_json(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "entries": self.entries,
            "applied": self.applied,
            "gained": self.gained,
            "unknown": self.unknown,
            "cursor": self.cursor,
        }


def load_cursor(conn: Connection, source: str) -> str | None:
    query = sa.select(bo_feed_cursors.c.cursor).where(bo_feed_cursors.c.source == source)
    found: str | None = conn.execute(query).scalar_one_or_none()
    return found


def save_cursor(conn: Connection, source: str, cursor: str, now: datetime) -> None:
    insert = insert_for(conn, bo_feed_cursors).values(
        source=source, cursor=cursor, updated_at=to_db(now)
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["source"],
            set_={"cursor": insert.excluded.cursor, "updated_at": insert.excluded.updated_at},
        )
    )


def file_entries(conn: Connection, entries: list[FeedEntry], now: datetime) -> tuple[int, int]:
    """File feed entries as firmware events (source 'feed'); (applied, unknown) counts."""
    reports = [
        VersionReport(
            device=e.device_id.hex,
            version=e.firmware_version.hex,
            at=e.changed_at,
            counter="",
            response_id=e.key(),
            alert_code=SOURCE,
            source=SOURCE,
            received_at=now,
        )
        for e in entries
        if e.firmware_version is not None and e.changed_at is not None
    ]
    applied = file_versions(conn, reports) if reports else []
    return sum(applied), len(entries) - len(reports)


def sync(
    engine: Engine,
    client: FeedClient,
    *,
    limit: int = PAGE_SIZE,
    clock: Callable[[], datetime] = utc_now,
    from_start: bool = False,
) -> SyncStats:
    """Read the feed from the saved cursor (``from_start``: from the beginning, filing
    again only what is not filed yet) until it is empty, filing page by page."""
    source = client.base_url
    cursor = None
    if not from_start:
        with engine.connect() as conn:
            cursor = load_cursor(conn, source)
    stats = SyncStats(cursor=cursor)
    while True:
        entries, cursor = client.page(cursor, limit)
        with engine.begin() as conn:
            applied, unknown = file_entries(conn, entries, clock())
            save_cursor(conn, source, cursor, clock())
        stats.pages += 1
        stats.entries += len(entries)
        stats.applied += applied
        stats.unknown += unknown
        stats.gained += sum(e.reason == "gained" for e in entries)
        stats.cursor = cursor
        log.info("feed_page", source=source, entries=len(entries), applied=applied)
        if not entries:
            return stats
