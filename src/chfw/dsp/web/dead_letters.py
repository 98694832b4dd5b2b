"""The DSP dashboard's dead-letter page and its replay action.

``/dashboard/dead-letters`` (template ``dead_letters.html``) lists
dead-lettered alerts (refused with 400, or out of retries), optionally of one
Service User; its form posts to ``/dashboard/dead-letters/replay``, which
replays the chosen ones or all of them: back to pending, due now, audited in
the same transaction with the signed-in operator as actor (``dashboard:<name>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool

from chfw.core.domain import DeviceId
from chfw.dsp.store import outbox, stats
from chfw.dsp.store.schema import outbox as outbox_table
from chfw.exceptions import InvalidValueError
from chfw.shared.db.engine import reading
from chfw.shared.web.auth import Viewer
from chfw.shared.web.common import CurrentDashboard, SignedIn, checked_form, page
from chfw.shared.web.render import SECURITY_HEADERS

log = structlog.get_logger("chfw.shared.web")

DEAD_LETTER_PAGE = 500  # rows listed on the page


def user_hex(text: str) -> str | None:
    """A Service User's ID from a form or query (any EUI-64 spelling); None when it is not one."""
    text = text.strip()
    if not text:
        return None
    try:
        return DeviceId.parse(text).hex  # a User ID is an EUI-64 like a Device ID
    except InvalidValueError:
        return None


@dataclass(frozen=True)
class DeadLetters:
    """Everything on the page, read over one connection."""

    rows: list[outbox.OutboxRow]  # the newest DEAD_LETTER_PAGE, of ``user`` if given
    total: int  # every dead letter
    shown_total: int  # every dead letter of ``user`` (or all)
    users: list[str]  # the Service Users that have dead letters (for the filter)
    user: str | None
    replays: list[stats.Replay]


def read_dead_letters(conn: Connection, user: str | None) -> DeadLetters:
    rows = outbox.list_rows(conn, state="dead", user_id=user, limit=DEAD_LETTER_PAGE)
    total = outbox.counts(conn)["dead"]
    users = conn.execute(
        sa.select(outbox_table.c.user_id).where(outbox_table.c.state == "dead").distinct()
    ).scalars()
    return DeadLetters(
        rows=rows,
        total=total,
        shown_total=len(outbox.dead_ids(conn, user)) if user else total,
        users=sorted(set(users)),
        user=user,
        replays=stats.recent_replays(conn),
    )


def replay_notice(replayed: int | None, skipped: int) -> str | None:
    """What the page says after a replay (``replayed`` None: there was none)."""
    if replayed is None:
        return None
    text = (
        f"{replayed:,} alert(s) put back to pending."
        if replayed
        else "Nothing was replayed: select at least one dead letter."
    )
    if skipped:
        text += f" {skipped:,} were no longer dead letters and were left alone."
    return text


def replay_dead_letters(
    engine: Engine,
    form: dict[str, list[str]],
    user_hex: str | None,
    viewer: Viewer,
    now: datetime,
) -> outbox.BulkChange:
    """Replay what the form chose (``action=all``: every dead letter, of ``user_hex`` if given)."""
    with engine.begin() as conn:
        if (form.get("action") or ["selected"])[0] == "all":
            ids = outbox.dead_ids(conn, user_hex)
        else:
            ids = [int(v) for v in form.get("id", []) if v.isdigit()]
        change = outbox.replay(conn, ids, viewer.actor, now)
        response_ids = list(
            conn.execute(
                sa.select(outbox_table.c.response_id)
                .where(outbox_table.c.id.in_(change.changed[:20]))
                .order_by(outbox_table.c.id)
            ).scalars()
        )
    log.info(
        "dead_letters_replayed",
        actor=viewer.actor,
        replayed=len(change.changed),
        skipped=len(change.skipped),
        missing=len(change.missing),
        response_ids=response_ids,  # the first 20
    )
    return change


router = APIRouter(include_in_schema=False)


@router.get("/dead-letters")
def dead_letters(
    viewer: SignedIn,
    dashboard: CurrentDashboard,
    user: str = "",
    replayed: int | None = None,
    skipped: int = 0,
) -> Response:
    with reading(dashboard.engine) as conn:
        view = read_dead_letters(conn, user_hex(user))
    return page(
        dashboard,
        viewer,
        "dead_letters.html",
        active="/dead-letters",
        live_url=f"{dashboard.prefix}/live.json",
        view=view,
        notice=replay_notice(replayed, skipped),
    )


@router.post("/dead-letters/replay")
async def replay(
    request: Request,
    viewer: SignedIn,
    dashboard: CurrentDashboard,
) -> Response:
    form = await checked_form(request, dashboard, viewer, "Replay")
    if isinstance(form, Response):
        return form
    chosen_user = user_hex((form.get("user") or [""])[0])
    change = await run_in_threadpool(
        replay_dead_letters, dashboard.engine, form, chosen_user, viewer, dashboard.clock()
    )
    query: dict[str, str | int] = {"replayed": len(change.changed), "skipped": len(change.skipped)}
    if chosen_user:
        query["user"] = chosen_user
    return RedirectResponse(
        f"{dashboard.prefix}/dead-letters?{urlencode(query)}",
        status_code=303,
        headers=SECURITY_HEADERS,
    )
