"""The catch-up feed: ``GET /su/v1/firmware?since=CURSOR&limit=N`` (issue 22 item 5).

A Service User (its inventory token, as for :mod:`chfw.dsp.intake.inventory_api`)
reads every change of active firmware on the CHs it supplies, and every CH it
gained, in feed order (:mod:`chfw.dsp.store.feed`)::

    {"changes": [{"device_id", "firmware_version", "changed_at",
                  "reason": "activation|gained"}], "next": CURSOR}

Without ``since`` it reads from the beginning. ``next`` is always given: pass it
as ``since`` to read on (an empty page means caught up for now; read again
later with the same cursor). Cursors are opaque; one that is not a cursor this
DSP issued, or that is ahead of the feed, is refused with 400.
"""

# No `from __future__ import annotations`: FastAPI reads the Annotated aliases at runtime.
import base64
import binascii
from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from chfw.dsp.intake.inventory_api import UserDep, inventory_engine
from chfw.dsp.store import feed
from chfw.shared.db.engine import reading

log = structlog.get_logger("chfw.dsp.intake.feed")

PATH = "/su/v1/firmware"
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
_PREFIX = "f1."


class FeedEntry(BaseModel):
    """One change of a CH's active firmware, or a CH the user gained."""

    device_id: str = Field(description="Device ID, DUIS form (00-1D-A1-00-00-00-00-01)")
    firmware_version: str | None = Field(
        description="Active firmware from then on, upper-case hex; null for a gained CH "
        "that never reported one"
    )
    changed_at: str | None = Field(description="When that version became active (ISO 8601)")
    reason: str = Field(description="activation | gained")


class FeedPage(BaseModel):
    """A page of the feed and the cursor to read on from."""

    changes: list[FeedEntry]
    next: str = Field(description="Opaque cursor: pass it as ?since= to read on")


def encode_cursor(position: int) -> str:
    """The opaque form of a feed position."""
    raw = position.to_bytes(8, "big")
    return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position of a cursor :func:`encode_cursor` made; ValueError for anything else."""
    if not cursor.startswith(_PREFIX) or len(cursor) != len(_PREFIX) + 11:
        raise ValueError("not a feed cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor[len(_PREFIX) :] + "=")
    except (binascii.Error, ValueError):
        raise ValueError("not a feed cursor") from None
    if encode_cursor(int.from_bytes(raw, "big")) != cursor:
        raise ValueError("not a feed cursor")  # only the one spelling we issue
    return int.from_bytes(raw, "big")


router = APIRouter(tags=["service users"])


@router.get(
    PATH,
    summary="Catch up: firmware changes and gained CHs since a cursor (Responsible Suppliers)",
    response_model=FeedPage,
    responses={
        400: {"description": "Not a cursor this DSP issued, or one ahead of the feed"},
        401: {"description": "Missing or unrecognised token"},
        429: {"description": "Too many wrong tokens from this address: Retry-After"},
    },
)
def read_feed(
    user: UserDep,
    request: Request,
    since: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> FeedPage:
    try:
        after = 0 if since is None else decode_cursor(since)
    except ValueError:
        shown = since if since is None or len(since) <= 40 else since[:40] + "…"
        raise HTTPException(400, f"since={shown!r} is not a cursor this DSP issued") from None
    engine = inventory_engine(request)
    with reading(engine) as conn:
        end = feed.numbered_end(conn)
    if end is None:  # entries committed since the last read: number them first
        with engine.begin() as conn:
            end = feed.sequence(conn)
    if after >= end:
        raise HTTPException(400, "the cursor is ahead of this DSP's feed (restored database?)")
    with reading(engine) as conn:
        page = feed.read(conn, user, after, end, limit)
    log.info("feed_read", user_id=str(user), entries=len(page.changes), after=after)
    return FeedPage(
        changes=[
            FeedEntry(
                device_id=str(c.device_id),
                firmware_version=c.firmware_version.hex if c.firmware_version else None,
                changed_at=c.changed_at.isoformat() if c.changed_at else None,
                reason=c.reason,
            )
            for c in page.changes
        ],
        next=encode_cursor(page.last),
    )
