"""The DSP dashboard's dead-letter page and its replay action.

``/dashboard/dead-letters`` lists dead-lettered alerts (refused with 400, or
out of retries), optionally of one Service User; the form replays the chosen
ones or all of them: back to pending, due now, audited in the same
transaction with the signed-in operator as actor (``dashboard:<name>``).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from chfw.domain import DeviceId
from chfw.exceptions import InvalidValueError
from chfw.store import outbox, stats
from chfw.store.schema import outbox as outbox_table
from chfw.web.auth import Viewer
from chfw.web.html import Html, esc, figures, fmt_int, hidden, table, when
from chfw.web.hub_page import hub_link, user_label

log = structlog.get_logger("chfw.web")

DEAD_LETTER_PAGE = 500  # rows listed on the page


def user_hex(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return DeviceId.parse(text).hex  # a User ID is an EUI-64 like a Device ID
    except InvalidValueError:
        return None


def dead_letters_main(
    conn: Connection, prefix: str, csrf: str, user: str | None, message: Html
) -> Html:
    rows = outbox.list_rows(conn, state="dead", user_id=user, limit=DEAD_LETTER_PAGE)
    total = outbox.counts(conn)["dead"]
    shown_total = len(outbox.dead_ids(conn, user)) if user else total
    users = sorted(
        set(
            conn.execute(
                sa.select(outbox_table.c.user_id).where(outbox_table.c.state == "dead").distinct()
            ).scalars()
        )
    )
    replays = stats.recent_replays(conn)
    options = "".join(
        f'<option value="{esc(u)}"{" selected" if u == user else ""}>{esc(user_label(u))}</option>'
        for u in users
    )
    filter_form = Html(
        f'<form class="inline" method="get" action="{prefix}/dead-letters">'
        '<div><label for="user">Service User</label>'
        f'<select id="user" name="user"><option value="">All users</option>{options}</select></div>'
        '<button type="submit" class="secondary">Filter</button></form>'
    )
    body_rows = [
        [
            Html(
                f'<input type="checkbox" name="id" value="{r.id}" id="dl-{r.id}" '
                f'aria-label="Select alert {esc(r.response_id)}">'
            ),
            Html(f'<label for="dl-{r.id}" class="mono">{esc(r.response_id)}</label>'),
            hub_link(prefix, r.device_id),
            Html(f"<span class=mono>{esc(user_label(r.user_id))}</span>"),
            r.alert_code,
            fmt_int(r.attempts),
            when(r.created_at),
            r.last_error,
        ]
        for r in rows
    ]
    listing = table(
        f"Dead-lettered alerts, newest first ({fmt_int(len(rows))} shown of "
        f"{fmt_int(shown_total)})",
        [
            "Select",
            "ResponseID",
            "CH",
            "Service User",
            "Alert",
            "Attempts",
            "Written",
            "Last error",
        ],
        body_rows,
        numeric=[5],
        empty="No dead letters.",
        table_id="dead-letters",
    )
    scope = f" of {user_label(user)}" if user else ""
    user_field = hidden("user", user) if user else ""
    buttons = (
        '<p><button type="submit" name="action" value="selected">Replay selected</button> '
        f'<button type="submit" name="action" value="all" class="secondary">'
        f"Replay all {esc(fmt_int(shown_total))} dead letters{esc(scope)}</button></p>"
        if rows
        else ""
    )
    form = Html(
        f'<form method="post" action="{prefix}/dead-letters/replay">'
        f"{hidden('csrf', csrf)}{user_field}{listing}{buttons}</form>"
    )
    replay_rows = [[when(r.at), r.actor, fmt_int(r.count)] for r in replays]
    audit = table(
        "Recent replays (from the audit log)",
        ["When", "Who", "Alerts"],
        replay_rows,
        numeric=[2],
        empty="No replay yet.",
        table_id="replays",
    )
    head = figures([("Dead letters", fmt_int(total), "outbox.dead")])
    return Html(
        f"{head}{message}"
        '<p class="hint">Replaying puts an alert back to pending, due now; the delivery worker '
        "sends it again. Each replay is recorded in the audit log with your name.</p>"
        f"{filter_form}{form}<h2>Replays</h2>{audit}"
    )


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
