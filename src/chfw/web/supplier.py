"""The supplier's dashboard, mounted into the receiver app under ``/dashboard``. Read-only.

One page: a pilot's progress (``?pilot=``; the first pilot by default) with
its cumulative activation curve and milestones, the HAN-readiness count for
a minimum version (``?min_version=``; default the pilot's target), the alerts
received by code, the most recent alerts and the refused POSTs with their
reasons. ``/dashboard/live.json`` (same query) feeds the live updates and
``/dashboard/charts/pilot.svg`` the chart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response
from sqlalchemy.engine import Connection, Engine

from chfw.domain import FirmwareVersion
from chfw.exceptions import InvalidValueError
from chfw.receiver import backoffice, pilots, readiness
from chfw.recent import Recent
from chfw.store.engine import reading
from chfw.store.sessions import DatabaseRevocations
from chfw.web import svg
from chfw.web.auth import DashboardAuth, Viewer
from chfw.web.common import (
    base_router,
    fingerprint,
    install_login_redirect,
    json_response,
)
from chfw.web.html import (
    Html,
    esc,
    figures,
    fmt_int,
    fmt_seconds,
    fmt_share,
    fmt_time,
    html_response,
    live_cell,
    page,
    svg_response,
    table,
    when,
)

APP_TITLE = "chfw · supplier dashboard"
SIGN_IN_HINT = (
    "The token is given to `chfw receiver serve` with --dashboard-token (or "
    "CHFW_RECEIVER_DASHBOARD_TOKEN). When it is not set, the receiver makes one at start and "
    "prints a sign-in link in its terminal."
)
RECENT = 15
STATUS_NAMES = {
    pilots.MemberStatus.ACTIVATED: "Activated, still on the target",
    pilots.MemberStatus.MOVED_ON: "Activated, since moved to another version",
    pilots.MemberStatus.VERSION_PENDING: "N999 received, version being fetched",
    pilots.MemberStatus.NOT_YET: "Not yet: failed, or still to come",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def mount_supplier_dashboard(
    app: FastAPI,
    engine: Engine,
    auth: DashboardAuth,
    *,
    clock: Callable[[], datetime] = _utcnow,
    cache_seconds: float = 2.0,
) -> None:
    """Add the dashboard's routes to the receiver app; each page's figures are read at most
    every ``cache_seconds``, however many people watch. Signed-out sessions are kept in
    ``engine``'s database, so every process serving the dashboard refuses them."""
    auth.revocations = DatabaseRevocations(engine)
    install_login_redirect(app)
    app.include_router(base_router(auth, app_title=APP_TITLE, token_hint=SIGN_IN_HINT))
    app.include_router(_router(engine, auth, clock, Recent(cache_seconds)))


@dataclass(frozen=True)
class SupplierView:
    """Everything on the page, read over one connection."""

    at: datetime
    pilot_names: list[str]
    pilot: pilots.Pilot | None
    progress: pilots.PilotProgress | None
    min_version: FirmwareVersion | None
    ready: readiness.Readiness | None
    alert_counts: dict[str, int]
    hubs: int
    alerts: list[backoffice.ReceivedAlert]
    rejections: list[backoffice.Rejection]
    problem: str | None  # e.g. a min_version that is not hex


def read_view(conn: Connection, now: datetime, pilot: str, min_version: str) -> SupplierView:
    names = [p.name for p in pilots.list_pilots(conn)]
    chosen = pilot if pilot in names else (names[0] if names else None)
    found, figures_ = pilots.pilot_progress(conn, chosen) if chosen else (None, None)
    distribution = backoffice.firmware_distribution(conn)
    problem = None
    version: FirmwareVersion | None = None
    if min_version.strip():
        try:
            version = FirmwareVersion.parse(min_version.strip())
        except InvalidValueError as exc:
            problem = str(exc)
    if version is None and found is not None:
        version = found.target_version
    if version is None:
        known = [v for v in map(readiness.comparable, filter(None, distribution)) if v]
        version = max(known) if known else None
    return SupplierView(
        at=now,
        pilot_names=names,
        pilot=found,
        progress=figures_,
        min_version=version,
        ready=None if version is None else readiness.split_versions(distribution, version),
        alert_counts=backoffice.alert_counts(conn),
        hubs=sum(distribution.values()),
        alerts=backoffice.list_alerts(conn, limit=RECENT),
        rejections=backoffice.list_rejections(conn, limit=RECENT),
        problem=problem,
    )


def live_figures(view: SupplierView) -> dict[str, str]:
    out = {
        "alerts.total": fmt_int(sum(view.alert_counts.values())),
        "alerts.N64": fmt_int(view.alert_counts.get("N64", 0)),
        "alerts.N999": fmt_int(view.alert_counts.get("N999", 0)),
        "hubs": fmt_int(view.hubs),
    }
    if view.progress is not None:
        p = view.progress
        out["pilot.activated"] = fmt_int(p.activated)
        out["pilot.share"] = fmt_share(p.activated, p.cohort)
        out["pilot.not_yet"] = fmt_int(p.not_yet)
        for status in pilots.MemberStatus:
            out[f"pilot.status.{status.value}"] = fmt_int(p.statuses[status])
        for milestone in p.milestones:
            out[f"pilot.milestone.{milestone.percent}"] = _milestone_text(milestone)
    if view.ready is not None:
        out["ready.ready"] = fmt_int(view.ready.ready)
        out["ready.below"] = fmt_int(view.ready.below)
        out["ready.unknown"] = fmt_int(view.ready.unknown)
    return out


def _milestone_text(milestone: pilots.Milestone) -> str:
    if milestone.reached_at is None:
        return f"not yet ({fmt_int(milestone.needed)} CHs needed)"
    after = milestone.after_first.total_seconds() if milestone.after_first else 0.0
    return f"{fmt_time(milestone.reached_at)} ({fmt_seconds(after)} after the first)"


def pilot_chart(pilot: pilots.Pilot | None, progress: pilots.PilotProgress | None) -> str:
    """The cohort's cumulative activations over (alert) time, with 50 % / 90 % guides."""
    if pilot is None or progress is None:
        return svg.line_chart(
            [],
            chart_id="pilot",
            title="Pilot progress",
            description="No pilot is defined: create one with `chfw pilot create`.",
        )
    points = [(moment.timestamp(), float(count)) for moment, count in progress.series]
    if points:
        points.insert(0, (points[0][0], 0.0))
    guides = [
        (float(m.needed), f"{m.percent} % ({fmt_int(m.needed)} CHs)") for m in progress.milestones
    ]
    xs = [x for x, _ in points]
    description = (
        f"Pilot {pilot.name}: {progress.activated:,} of {progress.cohort:,} CHs activated "
        f"{pilot.target_version.hex}"
        + (
            f", from {fmt_time(progress.first_activation)} to {fmt_time(progress.last_activation)}."
            if progress.first_activation
            else "; none yet."
        )
    )
    return svg.line_chart(
        [svg.Series(f"CHs on {pilot.target_version.hex} (cumulative)", points)],
        chart_id="pilot",
        title=f"Cumulative activations of pilot {pilot.name} (by alert time, UTC)",
        description=description,
        x_ticks=svg.time_ticks(xs[0], xs[-1]) if xs else (),
        x_range=(xs[0], xs[-1]) if xs else None,
        y_max=float(progress.cohort),
        guides=guides,
        step=True,
    )


def _forms(view: SupplierView, prefix: str) -> Html:
    options = "".join(
        f'<option value="{esc(name)}"'
        f"{' selected' if view.pilot and name == view.pilot.name else ''}>{esc(name)}</option>"
        for name in view.pilot_names
    )
    pilot_field = (
        '<div><label for="pilot">Pilot</label>'
        f'<select id="pilot" name="pilot">{options}</select></div>'
        if view.pilot_names
        else ""
    )
    version = view.min_version.hex if view.min_version else ""
    return Html(
        f'<form class="inline" method="get" action="{prefix}/">{pilot_field}'
        '<div><label for="min_version">HAN readiness: minimum firmware version (hex)</label>'
        f'<input type="text" id="min_version" name="min_version" value="{esc(version)}" '
        'pattern="[0-9A-Fa-f]{2,64}" inputmode="latin"></div>'
        '<button type="submit">Show</button></form>'
    )


def _main(view: SupplierView, prefix: str, query: str) -> Html:
    head = figures(
        [
            ("Alerts received", fmt_int(sum(view.alert_counts.values())), "alerts.total"),
            ("N64 (version carried)", fmt_int(view.alert_counts.get("N64", 0)), "alerts.N64"),
            ("N999 (version fetched)", fmt_int(view.alert_counts.get("N999", 0)), "alerts.N999"),
            ("CHs with a known alert", fmt_int(view.hubs), "hubs"),
            (
                "HAN-ready CHs",
                fmt_int(view.ready.ready) if view.ready else "—",
                "ready.ready",
            ),
        ]
    )
    problem = f'<p class="error" role="alert">{esc(view.problem)}</p>' if view.problem else ""
    parts = [head, problem, _forms(view, prefix)]
    chart_src = f"{prefix}/charts/pilot.svg?{query}"
    if view.pilot is not None and view.progress is not None:
        p, pilot = view.progress, view.pilot
        parts.append(f"<h2>Pilot {esc(pilot.name)}</h2>")
        if pilot.description:
            parts.append(f'<p class="hint">{esc(pilot.description)}</p>')
        parts.append(
            figures(
                [
                    ("Target version", pilot.target_version.hex, None),
                    ("Cohort", fmt_int(p.cohort), None),
                    ("Activated", fmt_int(p.activated), "pilot.activated"),
                    ("Share activated", fmt_share(p.activated, p.cohort), "pilot.share"),
                    ("Not yet (failed or to come)", fmt_int(p.not_yet), "pilot.not_yet"),
                ]
            )
        )
        status_rows = [
            [STATUS_NAMES[s], live_cell(fmt_int(p.statuses[s]), f"pilot.status.{s.value}")]
            for s in pilots.MemberStatus
        ]
        milestone_rows = [
            [
                f"{m.percent} % ({fmt_int(m.needed)} CHs)",
                live_cell(_milestone_text(m), f"pilot.milestone.{m.percent}"),
            ]
            for m in p.milestones
        ]
        parts.append(
            '<div class="grid"><figure><figcaption>Cumulative activations</figcaption>'
            f'<div data-chart="{esc(chart_src)}">{pilot_chart(pilot, p)}</div></figure><div>'
            + table(
                "Cohort CHs by status",
                ["Status", "CHs"],
                status_rows,
                numeric=[1],
                table_id="pilot-statuses",
            )
            + table(
                "Milestones (from the first activation)",
                ["Share", "Reached"],
                milestone_rows,
                table_id="pilot-milestones",
            )
            + "</div></div>"
        )
    else:
        parts.append(
            "<h2>Pilots</h2><p>No pilot is defined yet: create one with "
            "<code>chfw pilot create</code>.</p>"
        )
    if view.ready is not None and view.min_version is not None:
        r = view.ready
        version_rows = [
            [Html(f"<span class=mono>{esc(v)}</span>"), "ready", fmt_int(n)]
            for v, n in sorted(r.ready_versions.items())
        ] + [
            [Html(f"<span class=mono>{esc(v)}</span>"), "below", fmt_int(n)]
            for v, n in sorted(r.below_versions.items())
        ]
        parts.append(f"<h2>HAN readiness at {esc(view.min_version.hex)} or above</h2>")
        parts.append(
            figures(
                [
                    ("Ready", fmt_int(r.ready), "ready.ready"),
                    ("Below", fmt_int(r.below), "ready.below"),
                    ("Version unknown yet", fmt_int(r.unknown), "ready.unknown"),
                ]
            )
        )
        parts.append(
            table(
                "CHs per active firmware version",
                ["Firmware version", "Against the minimum", "CHs"],
                version_rows,
                numeric=[2],
                table_id="readiness",
            )
        )
    alert_rows = [
        [
            Html(f"<span class=mono>{esc(a.response_id)}</span>"),
            when(a.received_at),
            when(a.alert_time),
            a.alert_code,
            Html(f'<span class="mono nowrap">{esc(a.device_id)}</span>'),
            a.firmware_version,
            a.schema_version,
            fmt_int(a.duplicates),
        ]
        for a in view.alerts
    ]
    parts.append("<h2>Recently received alerts</h2>")
    parts.append(
        table(
            f"The {RECENT} most recent alerts, newest first",
            ["ResponseID", "Received", "Alert time", "Code", "CH", "Firmware", "DUIS", "Replays"],
            alert_rows,
            numeric=[7],
            empty="No alert received yet.",
            table_id="recent-alerts",
        )
    )
    rejection_rows = [
        [when(r.at), r.status_code, r.reason, r.remote, fmt_int(r.size), r.response_id]
        for r in view.rejections
    ]
    parts.append("<h2>Refused posts</h2>")
    parts.append(
        table(
            f"The {RECENT} most recent refused POSTs and why, newest first",
            ["When", "HTTP status", "Reason", "From", "Bytes", "ResponseID (if verified)"],
            rejection_rows,
            numeric=[1, 4],
            empty="No POST has been refused.",
            table_id="rejections",
        )
    )
    return Html("".join(parts))


def _router(
    engine: Engine,
    auth: DashboardAuth,
    clock: Callable[[], datetime],
    recent: Recent[SupplierView],
) -> APIRouter:
    prefix = auth.prefix
    router = APIRouter(prefix=prefix, include_in_schema=False)
    signed_in = Depends(auth.page_viewer)
    api_client = Depends(auth.api_viewer)

    def view(pilot: str, min_version: str) -> SupplierView:
        def read() -> SupplierView:
            with reading(engine) as conn:
                return read_view(conn, clock(), pilot, min_version)

        return recent.get((pilot, min_version), read)

    @router.get("/")
    def home(viewer: Viewer = signed_in, pilot: str = "", min_version: str = "") -> Response:
        found = view(pilot, min_version)
        query = urlencode(
            {
                "pilot": found.pilot.name if found.pilot else "",
                "min_version": found.min_version.hex if found.min_version else "",
            }
        )
        body = page(
            "Firmware pilots and HAN readiness",
            _main(found, prefix, query),
            app_title=APP_TITLE,
            base=prefix,
            nav=(("Pilots and alerts", f"{prefix}/"),),
            active=f"{prefix}/",
            csrf=auth.csrf_token(viewer),
            actor=viewer.name or "operator",
            live_url=f"{prefix}/live.json?{query}",
        )
        return html_response(body, 400 if found.problem else 200)

    @router.get("/live.json")
    def live(viewer: Viewer = api_client, pilot: str = "", min_version: str = "") -> Response:
        del viewer
        found = view(pilot, min_version)
        figures_ = live_figures(found)
        return json_response(
            {
                "at": found.at.strftime("%H:%M:%S UTC"),
                "version": fingerprint(figures_),
                "live": figures_,
            }
        )

    @router.get("/charts/pilot.svg")
    def chart(viewer: Viewer = api_client, pilot: str = "") -> Response:
        del viewer
        found = view(pilot, "")
        return svg_response(pilot_chart(found.pilot, found.progress))

    return router
