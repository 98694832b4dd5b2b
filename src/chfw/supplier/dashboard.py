"""The supplier's dashboard, mounted into the receiver app under ``/dashboard``.

One page: a pilot's progress (``?pilot=``; the first pilot by default) with
its cumulative activation curve and milestones, the HAN-readiness count for
a minimum version (``?min_version=``; default the pilot's target), the alerts
received by code, the most recent alerts and the refused POSTs with their
reasons. ``/dashboard/live.json`` (same query) feeds the live updates and
``/dashboard/charts/pilot.svg`` the chart. ``/dashboard/campaigns`` shows the DCC's
campaigns touching the supplier's CHs and places holds (:mod:`chfw.supplier.campaigns_page`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response
from sqlalchemy.engine import Connection, Engine

from chfw.core.clock import utc_now
from chfw.core.domain import FirmwareVersion
from chfw.exceptions import InvalidValueError
from chfw.shared.db.engine import reading
from chfw.shared.recent import Recent
from chfw.shared.web import svg
from chfw.shared.web.auth import DashboardAuth
from chfw.shared.web.common import (
    CurrentDashboard,
    Dashboard,
    SignedIn,
    api_viewer,
    fingerprint,
    mount,
    page,
)
from chfw.shared.web.formatting import fmt_int, fmt_seconds, fmt_share, fmt_time
from chfw.shared.web.render import add_templates, chart, json_response, svg_response
from chfw.supplier import backoffice, campaigns_page, estate, pilots, readiness
from chfw.supplier.schema import revoked_sessions

add_templates("chfw.supplier")  # the page in chfw/supplier/templates/

APP_TITLE = "chfw · supplier dashboard"
SIGN_IN_HINT = (
    "The token is given to `chfw receiver serve` with --dashboard-token (or "
    "CHFW_RECEIVER_DASHBOARD_TOKEN). When it is not set, the receiver makes one at start and "
    "prints a sign-in link in its terminal."
)
NAV = (("Pilots and alerts", "/"), ("DCC campaigns", "/campaigns"))
RECENT = 15
VERSION_SOURCES = {  # bo_firmware_events.version_source, as the recent-alerts table says it
    "alert": "the alert",
    "inventory": "fetched (DSP inventory)",
    "feed": "fetched (DSP feed)",
    "unknown": "not fetched yet",
}
STATUS_NAMES = {
    pilots.MemberStatus.ACTIVATED: "Activated, still on the target",
    pilots.MemberStatus.MOVED_ON: "Activated, since moved to another version",
    pilots.MemberStatus.VERSION_PENDING: "N999 received, version being fetched",
    pilots.MemberStatus.NOT_YET: "Not yet: failed, or still to come",
}


def mount_supplier_dashboard(
    app: FastAPI,
    engine: Engine,
    auth: DashboardAuth,
    *,
    clock: Callable[[], datetime] = utc_now,
    cache_seconds: float = 2.0,
) -> None:
    """Add the dashboard's routes to the receiver app; each page's figures are read at most
    every ``cache_seconds``, however many people watch. Signed-out sessions are kept in
    ``engine``'s database, so every process serving the dashboard refuses them."""
    dashboard = Dashboard(
        auth=auth,
        engine=engine,
        clock=clock,
        recent=Recent(cache_seconds),
        app_title=APP_TITLE,
        token_hint=SIGN_IN_HINT,
        nav=NAV,
    )
    mount(app, dashboard, (router, campaigns_page.router), revoked_sessions)


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
    n999_fetched: int  # N999s whose version was fetched (the others still wait)
    hubs: int  # CHs the back office has an alert for
    estate: int  # CHs imported as the supplier's own (`chfw receiver hubs import`)
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
    silent = estate.never_alerted(conn)
    return SupplierView(
        at=now,
        pilot_names=names,
        pilot=found,
        progress=figures_,
        min_version=version,
        ready=None if version is None else readiness.split_versions(distribution, version, silent),
        alert_counts=backoffice.alert_counts(conn),
        n999_fetched=backoffice.n999_fetched(conn),
        hubs=sum(distribution.values()),
        estate=estate.estate_size(conn),
        alerts=backoffice.list_alerts(conn, limit=RECENT),
        rejections=backoffice.list_rejections(conn, limit=RECENT),
        problem=problem,
    )


def live_figures(view: SupplierView) -> dict[str, str]:
    out = {
        "alerts.total": fmt_int(sum(view.alert_counts.values())),
        "alerts.N64": fmt_int(view.alert_counts.get("N64", 0)),
        "alerts.N999": fmt_int(view.alert_counts.get("N999", 0)),
        "alerts.N999.fetched": fmt_int(view.n999_fetched),
        "hubs": fmt_int(view.hubs),
        "estate": fmt_int(view.estate),
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


def view_of(dashboard: Dashboard, pilot: str, min_version: str) -> SupplierView:
    """The page for this query, read at most every cache period however many people watch."""

    def read() -> SupplierView:
        with reading(dashboard.engine) as conn:
            return read_view(conn, dashboard.clock(), pilot, min_version)

    found = dashboard.recent.get((pilot, min_version), read)
    assert isinstance(found, SupplierView)
    return found


router = APIRouter(include_in_schema=False)


@router.get("/")
def home(
    viewer: SignedIn,
    dashboard: CurrentDashboard,
    pilot: str = "",
    min_version: str = "",
) -> Response:
    found = view_of(dashboard, pilot, min_version)
    query = urlencode(
        {
            "pilot": found.pilot.name if found.pilot else "",
            "min_version": found.min_version.hex if found.min_version else "",
        }
    )
    prefix = dashboard.prefix
    return page(
        dashboard,
        viewer,
        "supplier.html",
        400 if found.problem else 200,
        active="/",
        live_url=f"{prefix}/live.json?{query}",
        view=found,
        recent=RECENT,
        version_sources=VERSION_SOURCES,
        statuses=[(STATUS_NAMES[status], status) for status in pilots.MemberStatus],
        milestones=[(m, _milestone_text(m)) for m in found.progress.milestones]
        if found.progress
        else [],
        chart_src=f"{prefix}/charts/pilot.svg?{query}",
        pilot_chart=chart(pilot_chart(found.pilot, found.progress)),
    )


@router.get("/live.json", dependencies=[Depends(api_viewer)])
def live(dashboard: CurrentDashboard, pilot: str = "", min_version: str = "") -> Response:
    found = view_of(dashboard, pilot, min_version)
    figures_ = live_figures(found)
    return json_response(
        {
            "at": found.at.strftime("%H:%M:%S UTC"),
            "version": fingerprint(figures_),
            "live": figures_,
        }
    )


@router.get("/charts/pilot.svg", dependencies=[Depends(api_viewer)])
def pilot_svg(dashboard: CurrentDashboard, pilot: str = "") -> Response:
    found = view_of(dashboard, pilot, "")
    return svg_response(pilot_chart(found.pilot, found.progress))
