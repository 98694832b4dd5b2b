"""The DSP's dashboard, mounted into the intake app under ``/dashboard``.

Read-only, except for replaying dead letters (a POST, CSRF-checked, audited
with the signed-in operator as actor). Pages:

- ``/dashboard/``: firmware distribution (CHs per active version and CSP
  region, each version's share), activation outcomes over time, alert
  delivery health per Service User; live while a wave runs (``/live.json``
  polled every 3 s, charts at ``/charts/*.svg`` fetched again when figures change);
- ``/dashboard/hubs/<Device ID>``: one CH's history, its alerts and their
  delivery attempts (``/dashboard/hubs?device_id=`` finds one);
- ``/dashboard/dead-letters``: dead-lettered alerts, with the replay form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Connection, Engine

from chfw.domain import DeviceId, FirmwareVersion
from chfw.estate_file import CspRegion
from chfw.exceptions import InvalidValueError
from chfw.store import estate, inventory, outbox, stats
from chfw.store.schema import outbox as outbox_table
from chfw.web import svg
from chfw.web.auth import DashboardAuth, Viewer, read_form
from chfw.web.common import base_router, fingerprint, install_login_redirect, json_response
from chfw.web.html import (
    SECURITY_HEADERS,
    Html,
    esc,
    figures,
    fmt_int,
    fmt_seconds,
    fmt_share,
    fmt_time,
    hidden,
    html_response,
    link,
    live_cell,
    page,
    svg_response,
    table,
    when,
)

log = structlog.get_logger("chfw.web")

APP_TITLE = "chfw · DSP dashboard"
SIGN_IN_HINT = (
    "The token is the dashboard_token setting (CHFW_DASHBOARD_TOKEN). When it is not set, "
    "`chfw serve` makes one at start and prints a sign-in link in its terminal."
)
DEAD_LETTER_PAGE = 500  # rows listed on the dead-letter page
CATEGORY_NAMES = {
    "success": "Success",
    "no_image_held": "No image held",
    "hash_mismatch": "Hash mismatch",
    "activation_failure": "Activation failure",
    "pending": "Pending (future-dated)",
}
NOT_REPORTED = "not reported"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def mount_dsp_dashboard(
    app: FastAPI,
    engine: Engine,
    auth: DashboardAuth,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> None:
    """Add the dashboard's routes to the intake app."""
    install_login_redirect(app)
    app.include_router(base_router(auth, app_title=APP_TITLE, token_hint=SIGN_IN_HINT))
    app.include_router(_router(engine, auth, clock))


# --- what the overview shows ------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    """Everything on the overview page, read in one transaction."""

    at: datetime
    hubs: int
    distribution: dict[str | None, int]
    by_region: dict[CspRegion, dict[str | None, int]]
    timeline: stats.Timeline
    delivery: list[stats.UserDelivery]
    counts: outbox.OutboxCounts
    oldest_due_seconds: float | None

    @property
    def versions(self) -> list[str | None]:
        """Versions, highest first; CHs never reported last."""
        known = sorted(
            (v for v in self.distribution if v is not None),
            key=FirmwareVersion.parse,
            reverse=True,
        )
        return [*known, None] if None in self.distribution else list(known)

    @property
    def delivered_recently(self) -> int:
        return sum(user.delivered_recently for user in self.delivery)


def read_overview(conn: Connection, now: datetime) -> Overview:
    return Overview(
        at=now,
        hubs=estate.count_hubs(conn),
        distribution=estate.firmware_distribution(conn),
        by_region=estate.firmware_distribution_by_region(conn),
        timeline=stats.outcome_timeline(conn),
        delivery=stats.delivery_health(conn, now),
        counts=outbox.counts(conn),
        oldest_due_seconds=outbox.oldest_due_age(conn, now),
    )


def _version_label(version: str | None) -> str:
    return version if version is not None else NOT_REPORTED


def _version_key(version: str | None) -> str:
    return version if version is not None else "none"


def live_figures(view: Overview) -> dict[str, str]:
    """The text of every element marked ``data-live`` on the overview and dead-letter pages."""
    figures_ = {
        "hubs": fmt_int(view.hubs),
        "outcomes": fmt_int(
            sum(view.timeline.totals.get(n, 0) for n in CATEGORY_NAMES if n != "pending")
        ),
        "outbox.pending": fmt_int(view.counts["pending"]),
        "outbox.retrying": fmt_int(view.counts["retrying"]),
        "outbox.dead": fmt_int(view.counts["dead"]),
        "outbox.delivered": fmt_int(view.counts["delivered"]),
        "delivered.recent": fmt_int(view.delivered_recently),
        "oldest_due": fmt_seconds(view.oldest_due_seconds)
        if view.oldest_due_seconds
        else "none due",
    }
    for version in view.versions:
        key = _version_key(version)
        count = view.distribution.get(version, 0)
        figures_[f"version.{key}"] = fmt_int(count)
        figures_[f"version.{key}.share"] = fmt_share(count, view.hubs)
        for region in CspRegion:
            figures_[f"version.{key}.{region.value}"] = fmt_int(
                view.by_region.get(region, {}).get(version, 0)
            )
    for name in CATEGORY_NAMES:
        figures_[f"outcome.{name}"] = fmt_int(view.timeline.totals.get(name, 0))
    for user in view.delivery:
        prefix = f"delivery.{user.user_id}"
        figures_[f"{prefix}.waiting"] = fmt_int(user.waiting)
        figures_[f"{prefix}.retrying"] = fmt_int(user.retrying)
        figures_[f"{prefix}.dead"] = fmt_int(user.dead)
        figures_[f"{prefix}.delivered"] = fmt_int(user.delivered)
        figures_[f"{prefix}.recent"] = fmt_int(user.delivered_recently)
        figures_[f"{prefix}.p50"] = fmt_seconds(user.p50_seconds)
        figures_[f"{prefix}.p99"] = fmt_seconds(user.p99_seconds)
    return figures_


# --- charts -----------------------------------------------------------------------------------


def outcomes_chart(timeline: stats.Timeline) -> str:
    """Cumulative outcomes over time, one line per category."""
    if not timeline.times:
        return svg.line_chart(
            [],
            chart_id="outcomes",
            title="Activation outcomes over time",
            description="No activation outcome has been recorded yet.",
            width=1100,
            height=340,
        )
    xs = [moment.timestamp() for moment in timeline.times]
    series = [
        svg.Series(CATEGORY_NAMES[name], list(zip(xs, timeline.series[name], strict=True)))
        for name in CATEGORY_NAMES
    ]
    totals = timeline.totals
    summary = ", ".join(f"{CATEGORY_NAMES[n]} {totals.get(n, 0):,}" for n in CATEGORY_NAMES)
    return svg.line_chart(
        series,
        chart_id="outcomes",
        title="Activation outcomes over time (cumulative, by time recorded, UTC)",
        description=(
            f"From {fmt_time(timeline.times[0])} to {fmt_time(timeline.times[-1])} in "
            f"{timeline.step_seconds}-second steps. Latest: {summary}."
        ),
        x_ticks=svg.time_ticks(xs[0], xs[-1], count=10),
        x_range=(xs[0], xs[-1]),
        width=1100,
        height=340,
    )


def firmware_chart(view: Overview) -> str:
    """Each active version's share of the estate, as bars."""
    bars = [
        svg.Bar(
            _version_label(version),
            view.distribution.get(version, 0),
            f"{fmt_share(view.distribution.get(version, 0), view.hubs)} "
            f"({fmt_int(view.distribution.get(version, 0))} CHs)",
        )
        for version in view.versions
    ]
    return svg.bar_chart(
        bars,
        chart_id="firmware",
        title="Share of Communications Hubs per active firmware version",
        description="; ".join(f"{bar.label}: {bar.text}" for bar in bars) or "No CHs yet.",
        maximum=max(view.hubs, 1),
    )


# --- page sections ----------------------------------------------------------------------------


def _nav(prefix: str) -> tuple[tuple[str, str], ...]:
    return (("Overview", f"{prefix}/"), ("Dead letters", f"{prefix}/dead-letters"))


def _find_form(prefix: str, value: str = "") -> Html:
    return Html(
        f'<form class="inline" method="get" action="{prefix}/hubs" role="search">'
        '<div><label for="device_id">Find a Communications Hub</label>'
        f'<input type="search" id="device_id" name="device_id" value="{esc(value)}" '
        'placeholder="00-1D-A1-00-00-00-00-01" required></div>'
        '<button type="submit">Show</button></form>'
    )


def _overview_main(view: Overview, prefix: str) -> Html:
    counts = view.counts
    head = figures(
        [
            ("Communications Hubs", fmt_int(view.hubs), "hubs"),
            ("Outcomes recorded", live_figures(view)["outcomes"], "outcomes"),
            ("Alerts pending", fmt_int(counts["pending"]), "outbox.pending"),
            ("… of which retrying", fmt_int(counts["retrying"]), "outbox.retrying"),
            ("Dead letters", fmt_int(counts["dead"]), "outbox.dead"),
            ("Delivered, last hour", fmt_int(view.delivered_recently), "delivered.recent"),
            (
                "Oldest due alert waiting",
                fmt_seconds(view.oldest_due_seconds) if view.oldest_due_seconds else "none due",
                "oldest_due",
            ),
        ]
    )
    version_rows = []
    for version in view.versions:
        key = _version_key(version)
        count = view.distribution.get(version, 0)
        version_rows.append(
            [
                Html(f"<span class=mono>{esc(_version_label(version))}</span>"),
                live_cell(fmt_int(count), f"version.{key}"),
                live_cell(fmt_share(count, view.hubs), f"version.{key}.share"),
                *(
                    live_cell(
                        fmt_int(view.by_region.get(region, {}).get(version, 0)),
                        f"version.{key}.{region.value}",
                    )
                    for region in CspRegion
                ),
            ]
        )
    distribution = table(
        "Communications Hubs per active firmware version and CSP region",
        ["Firmware version", "CHs", "Share", *(f"{r.value.title()} CHs" for r in CspRegion)],
        version_rows,
        numeric=range(1, 3 + len(CspRegion)),
        empty="The estate is empty: import one with `chfw estate import`.",
        table_id="firmware-distribution",
    )
    totals = view.timeline.totals
    outcome_rows = [
        [CATEGORY_NAMES[name], live_cell(fmt_int(totals.get(name, 0)), f"outcome.{name}")]
        for name in CATEGORY_NAMES
    ]
    outcomes = table(
        "Activation outcomes so far (pending: accepted, outcome alert not yet received)",
        ["Outcome", "CHs"],
        outcome_rows,
        numeric=[1],
        table_id="outcome-totals",
    )
    delivery_rows = []
    for user in view.delivery:
        p = f"delivery.{user.user_id}"
        dead_link = Html(
            f'<a href="{prefix}/dead-letters?{urlencode({"user": user.user_id})}" '
            f'data-live="{p}.dead">{esc(fmt_int(user.dead))}</a>'
        )
        delivery_rows.append(
            [
                Html(
                    f"{esc(user.name or 'not a Service User')}<br>"
                    f"<span class=mono>{esc(_user_label(user.user_id))}</span>"
                ),
                live_cell(fmt_int(user.waiting), f"{p}.waiting"),
                live_cell(fmt_int(user.retrying), f"{p}.retrying"),
                dead_link,
                live_cell(fmt_int(user.delivered), f"{p}.delivered"),
                live_cell(fmt_int(user.delivered_recently), f"{p}.recent"),
                live_cell(fmt_seconds(user.p50_seconds), f"{p}.p50"),
                live_cell(fmt_seconds(user.p99_seconds), f"{p}.p99"),
            ]
        )
    delivery = table(
        "Alert delivery per Service User (latency: from intake to delivery, last hour)",
        [
            "Service User",
            "Pending, not yet tried",
            "Retrying",
            "Dead letters",
            "Delivered",
            "Delivered, last hour",
            "Latency p50",
            "Latency p99",
        ],
        delivery_rows,
        numeric=range(1, 8),
        empty="No alert has been written yet.",
        table_id="delivery-health",
    )
    return Html(
        f"{head}{_find_form(prefix)}"
        "<h2>Firmware distribution</h2>"
        f'<div class="grid"><div>{distribution}</div>'
        f"<figure><figcaption>Share of CHs per version</figcaption>"
        f'<div data-chart="{prefix}/charts/firmware.svg">{firmware_chart(view)}</div>'
        "</figure></div>"
        "<h2>Activation outcomes over time</h2>"
        "<figure><figcaption>Cumulative outcomes by the time chfw recorded them</figcaption>"
        f'<div data-chart="{prefix}/charts/outcomes.svg">{outcomes_chart(view.timeline)}</div>'
        f'</figure><div class="narrow">{outcomes}</div>'
        "<h2>Alert delivery</h2>"
        f"{delivery}"
    )


def _user_label(user_hex: str) -> str:
    try:
        return str(DeviceId.parse(user_hex))  # same EUI-64 form as User IDs
    except InvalidValueError:
        return user_hex


def _hub_main(conn: Connection, device: DeviceId, prefix: str) -> Html | None:
    hub = estate.get_hub(conn, device)
    if hub is None:
        return None
    points = estate.meter_points_for(conn, device)
    history = inventory.history_for(conn, device)
    alerts = outbox.list_rows(conn, device_id=device.hex, limit=500)
    attempts = stats.attempts_for_device(conn, device.hex)
    head = figures(
        [
            ("CSP region", hub.csp_region.value.title(), None),
            (
                "Active firmware",
                hub.active_firmware.hex if hub.active_firmware else NOT_REPORTED,
                None,
            ),
            ("Since", fmt_time(hub.firmware_changed_at), None),
            ("Outcomes recorded", fmt_int(len(history)), None),
            ("Alerts sent", fmt_int(len(alerts)), None),
        ]
    )

    def user(u: object) -> Html:
        return Html(f"<span class=mono>{esc(u)}</span>") if u else esc(None)

    point_rows = [
        [
            Html(f"<span class=mono>{esc(p.identifier)}</span>"),
            p.fuel.value,
            user(p.import_supplier),
            user(p.export_supplier),
            user(p.gas_supplier),
        ]
        for p in points
    ]
    history_rows = [
        [
            when(e.recorded_at),
            f"{e.originator_counter}",
            e.event.value,
            e.source.value,
            e.result.value,
            e.decision.value,
            e.reported_version.hex if e.reported_version else None,
            f"{e.version_before.hex if e.version_before else '—'} → "
            f"{e.version_after.hex if e.version_after else '—'}",
            fmt_int(e.alerts_created),
            e.note,
        ]
        for e in history
    ]
    alert_rows = [
        [
            Html(f"<span class=mono>{esc(a.response_id)}</span>"),
            user(_user_label(a.user_id)),
            a.alert_code,
            Html(f'<span class="state-{esc(a.state)}">{esc(a.display_state)}</span>'),
            fmt_int(a.attempts),
            when(a.created_at),
            when(a.delivered_at),
            a.last_error,
        ]
        for a in alerts
    ]
    attempt_rows = [
        [
            Html(f"<span class=mono>{esc(t.response_id)}</span>"),
            when(t.attempted_at),
            t.outcome,
            t.status_code,
            None if t.duration_ms is None else f"{t.duration_ms:,.0f} ms",
            t.error,
        ]
        for t in attempts
    ]
    return Html(
        f"{head}{_find_form(prefix, str(device))}"
        + table(
            "Meter points on this CH's HAN",
            ["MPxN", "Fuel", "Import Supplier", "Export Supplier", "Gas Supplier"],
            point_rows,
            empty="No meter point is registered on this CH.",
            table_id="meter-points",
        )
        + "<h2>Firmware history</h2>"
        + table(
            "Every outcome a CSP reported for this CH, oldest first",
            [
                "Recorded",
                "Counter",
                "Event",
                "Source",
                "Result",
                "Decision",
                "Reported version",
                "Version before → after",
                "Alerts",
                "Note",
            ],
            history_rows,
            numeric=[1, 8],
            empty="No outcome has been reported for this CH.",
            table_id="hub-history",
        )
        + "<h2>Alerts sent</h2>"
        + table(
            "Alerts written for this CH, newest first",
            [
                "ResponseID",
                "Service User",
                "Alert",
                "State",
                "Attempts",
                "Written",
                "Delivered",
                "Last error",
            ],
            alert_rows,
            numeric=[4],
            empty="No alert has been written for this CH.",
            table_id="hub-alerts",
        )
        + "<h2>Delivery attempts</h2>"
        + table(
            "Delivery attempts of these alerts, newest first",
            ["ResponseID", "Attempted", "Outcome", "HTTP status", "Took", "Error"],
            attempt_rows,
            numeric=[3, 4],
            empty="No delivery attempt yet.",
            table_id="hub-attempts",
        )
    )


def _dead_letters_main(
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
        f'<option value="{esc(u)}"{" selected" if u == user else ""}>{esc(_user_label(u))}</option>'
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
            link(f"{prefix}/hubs/{DeviceId.parse(r.device_id)}", DeviceId.parse(r.device_id)),
            Html(f"<span class=mono>{esc(_user_label(r.user_id))}</span>"),
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
    scope = f" of {_user_label(user)}" if user else ""
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


# --- routes -----------------------------------------------------------------------------------


def _router(engine: Engine, auth: DashboardAuth, clock: Callable[[], datetime]) -> APIRouter:
    prefix = auth.prefix
    router = APIRouter(prefix=prefix, include_in_schema=False)
    signed_in = Depends(auth.page_viewer)
    api_client = Depends(auth.api_viewer)

    def frame(
        title: str,
        main: Html,
        viewer: Viewer,
        active: str,
        live: bool = False,
        status_code: int = 200,
    ) -> Response:
        return html_response(
            page(
                title,
                main,
                app_title=APP_TITLE,
                base=prefix,
                nav=_nav(prefix),
                active=active,
                csrf=auth.csrf_token(viewer),
                actor=viewer.name or "operator",
                live_url=f"{prefix}/live.json" if live else None,
            ),
            status_code,
        )

    def overview() -> Overview:
        with engine.connect() as conn:
            return read_overview(conn, clock())

    @router.get("/")
    def home(viewer: Viewer = signed_in) -> Response:
        view = overview()
        return frame("Firmware roll-out", _overview_main(view, prefix), viewer, f"{prefix}/", True)

    @router.get("/live.json")
    def live(viewer: Viewer = api_client) -> Response:
        del viewer
        view = overview()
        figures_ = live_figures(view)
        return json_response(
            {
                "at": view.at.strftime("%H:%M:%S UTC"),
                "version": fingerprint(figures_),
                "live": figures_,
            }
        )

    @router.get("/charts/outcomes.svg")
    def outcomes_svg(viewer: Viewer = api_client) -> Response:
        del viewer
        with engine.connect() as conn:
            return svg_response(outcomes_chart(stats.outcome_timeline(conn)))

    @router.get("/charts/firmware.svg")
    def firmware_svg(viewer: Viewer = api_client) -> Response:
        del viewer
        return svg_response(firmware_chart(overview()))

    @router.get("/hubs")
    def find_hub(viewer: Viewer = signed_in, device_id: str = "") -> Response:
        try:
            device = DeviceId.parse(device_id.strip())
        except InvalidValueError as exc:
            main = Html(
                f'<p class="error" role="alert">{esc(exc)}</p>{_find_form(prefix, device_id)}'
            )
            return frame("Find a Communications Hub", main, viewer, "")
        return RedirectResponse(
            f"{prefix}/hubs/{device}", status_code=303, headers=SECURITY_HEADERS
        )

    @router.get("/hubs/{device_id}")
    def hub(device_id: str, viewer: Viewer = signed_in) -> Response:
        try:
            device = DeviceId.parse(device_id)
        except InvalidValueError as exc:
            main = Html(f'<p class="error" role="alert">{esc(exc)}</p>{_find_form(prefix)}')
            return frame("Not a Device ID", main, viewer, "")
        with engine.connect() as conn:
            main_ = _hub_main(conn, device, prefix)
        if main_ is None:
            missing = Html(
                f'<p class="error" role="alert">CH {esc(device)} is not in the estate.</p>'
                f"{_find_form(prefix, str(device))}"
            )
            return frame(f"CH {device}", missing, viewer, "", status_code=404)
        return frame(f"Communications Hub {device}", main_, viewer, "")

    @router.get("/dead-letters")
    def dead_letters(
        viewer: Viewer = signed_in, user: str = "", replayed: int | None = None, skipped: int = 0
    ) -> Response:
        message = Html("")
        if replayed is not None:
            text = (
                f"{replayed:,} alert(s) put back to pending."
                if replayed
                else ("Nothing was replayed: select at least one dead letter.")
            )
            if skipped:
                text += f" {skipped:,} were no longer dead letters and were left alone."
            message = Html(f'<p class="notice" role="status">{esc(text)}</p>')
        user_hex = _user_hex(user)
        with engine.connect() as conn:
            main = _dead_letters_main(conn, prefix, auth.csrf_token(viewer), user_hex, message)
        return frame("Dead letters", main, viewer, f"{prefix}/dead-letters", True)

    @router.post("/dead-letters/replay")
    async def replay(request: Request, viewer: Viewer = signed_in) -> Response:
        form = await read_form(request)
        problem = (
            "the form was too large" if form is None else auth.check_post(request, viewer, form)
        )
        if problem or form is None:
            main = Html(f'<p class="error" role="alert">Replay refused: {esc(problem)}.</p>')
            return frame("Replay refused", main, viewer, "", status_code=403)
        user_hex = _user_hex((form.get("user") or [""])[0])
        action = (form.get("action") or ["selected"])[0]
        change = await _replay(engine, form, action, user_hex, viewer, clock)
        query = {"replayed": len(change.changed), "skipped": len(change.skipped)}
        if user_hex:
            query["user"] = user_hex  # type: ignore[assignment]
        return RedirectResponse(
            f"{prefix}/dead-letters?{urlencode(query)}", status_code=303, headers=SECURITY_HEADERS
        )

    return router


def _user_hex(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return DeviceId.parse(text).hex  # a User ID is an EUI-64 like a Device ID
    except InvalidValueError:
        return None


async def _replay(
    engine: Engine,
    form: dict[str, list[str]],
    action: str,
    user_hex: str | None,
    viewer: Viewer,
    clock: Callable[[], datetime],
) -> outbox.BulkChange:
    from starlette.concurrency import run_in_threadpool

    def run() -> outbox.BulkChange:
        with engine.begin() as conn:
            if action == "all":
                ids = outbox.dead_ids(conn, user_hex)
            else:
                ids = [int(v) for v in form.get("id", []) if v.isdigit()]
            change = outbox.replay(conn, ids, viewer.actor, clock())
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
            response_ids=response_ids,
        )
        return change

    return await run_in_threadpool(run)
