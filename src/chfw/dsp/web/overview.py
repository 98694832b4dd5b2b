"""The DSP dashboard's overview: its figures, live updates, charts.

``/dashboard/``: the firmware distribution (CHs per active version and CSP
region, each version's share), activation outcomes over time, and alert
delivery health per Service User (template ``overview.html``).
``/dashboard/live.json`` is the same page as text keyed like the page's
``data-live`` elements (:func:`live_figures`); ``/dashboard/charts/*.svg``
serve its charts, which the page's script fetches again when figures change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.engine import Connection

from chfw.core.domain import FirmwareVersion
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import campaigns, estate, outbox, parked_outcomes, stats
from chfw.shared.db.engine import reading
from chfw.shared.web import svg
from chfw.shared.web.common import (
    CurrentDashboard,
    Dashboard,
    SignedIn,
    api_viewer,
    fingerprint,
    page,
)
from chfw.shared.web.formatting import fmt_int, fmt_seconds, fmt_share, fmt_time
from chfw.shared.web.render import chart, json_response, macro, svg_response

NOT_REPORTED = "not reported"
CATEGORY_NAMES = {
    "success": "Success",
    "no_image_held": "No image held",
    "hash_mismatch": "Hash mismatch",
    "activation_failure": "Activation failure",
    "pending": "Pending (future-dated)",
}
FAILURES_AND_PENDING = tuple(name for name in CATEGORY_NAMES if name != "success")
SIGNING_WARNING = timedelta(days=30)


@dataclass(frozen=True)
class Overview:
    """Everything on the overview page, read over one connection."""

    at: datetime
    hubs: int
    distribution: dict[str | None, int]
    by_region: dict[CspRegion, dict[str | None, int]]
    timeline: stats.Timeline
    delivery: list[stats.UserDelivery]
    counts: outbox.OutboxCounts
    parked_outcomes: int = 0  # outcomes for CHs not in the estate yet (`chfw parked list`)
    paused_campaigns: tuple[tuple[str, str], ...] = ()  # (name, reason): resumed only by hand

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
    def oldest_undelivered_seconds(self) -> float | None:
        """The longest any pending alert has waited since it was made (None: none pending):
        the maximum of chfw_outbox_oldest_undelivered_age_seconds."""
        ages = [u.oldest_undelivered_seconds for u in self.delivery]
        known = [age for age in ages if age is not None]
        return max(known) if known else None

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
        parked_outcomes=parked_outcomes.count(conn),
        paused_campaigns=tuple(campaigns.paused(conn)),
    )


def overview_of(dashboard: Dashboard) -> Overview:
    """The overview's figures, read at most every cache period however many people watch."""

    def read() -> Overview:
        with reading(dashboard.engine) as conn:
            return read_overview(conn, dashboard.clock())

    view = dashboard.recent.get("overview", read)
    assert isinstance(view, Overview)
    return view


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
        "outbox.parked": fmt_int(view.counts["parked"]),
        "outbox.delivered": fmt_int(view.counts["delivered"]),
        "parked_outcomes": fmt_int(view.parked_outcomes),
        "delivered.recent": fmt_int(view.delivered_recently),
        "oldest_undelivered": "none pending"
        if view.oldest_undelivered_seconds is None
        else fmt_seconds(view.oldest_undelivered_seconds),
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
        figures_[f"{prefix}.oldest"] = fmt_seconds(user.oldest_undelivered_seconds)
        figures_[f"{prefix}.state"] = "suspended" if user.suspended else "active"
    return figures_


# --- charts: the data, drawn by chfw.shared.web.svg -----------------------------------------------


def outcomes_chart(timeline: stats.Timeline, only: tuple[str, ...] | None = None) -> str:
    """Cumulative outcomes over time, one line per category (all, or ``only`` those, smaller)."""
    names = only or tuple(CATEGORY_NAMES)
    chart_id = "outcomes" if only is None else "failures"
    title = (
        "Activation outcomes over time (cumulative, by time recorded, UTC)"
        if only is None
        else "Failures and pending activations over time (cumulative, UTC)"
    )
    width, height = (1100, 340) if only is None else (560, 300)
    if not timeline.times:
        return svg.line_chart(
            [],
            chart_id=chart_id,
            title=title,
            description="No activation outcome has been recorded yet.",
            width=width,
            height=height,
        )
    xs = [moment.timestamp() for moment in timeline.times]
    styles = {name: index for index, name in enumerate(CATEGORY_NAMES)}
    series = [
        svg.Series(
            CATEGORY_NAMES[name],
            list(zip(xs, timeline.series[name], strict=True)),
            style=styles[name],
        )
        for name in names
    ]
    totals = timeline.totals
    summary = ", ".join(f"{CATEGORY_NAMES[n]} {totals.get(n, 0):,}" for n in names)
    return svg.line_chart(
        series,
        chart_id=chart_id,
        title=title,
        description=(
            f"From {fmt_time(timeline.times[0])} to {fmt_time(timeline.times[-1])} in "
            f"{timeline.step_seconds}-second steps. Latest: {summary}."
        ),
        x_ticks=svg.time_ticks(xs[0], xs[-1], count=10 if only is None else 5),
        x_range=(xs[0], xs[-1]),
        width=width,
        height=height,
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


# --- the signing certificate -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningStatus:
    """The signing certificate's issuer, serial and expiry, as a sentence; ``warning`` from
    :data:`SIGNING_WARNING` before its expiry."""

    text: str
    warning: bool


def signing_status(certificate: x509.Certificate, now: datetime) -> SigningStatus:
    not_after = certificate.not_valid_after_utc
    left = not_after - now
    days = left / timedelta(days=1)
    when = f"in {days:,.0f} days" if days >= 1 else f"in {left.total_seconds() / 3600:.1f} hours"
    if left <= timedelta(0):
        when = "EXPIRED: receivers refuse alerts signed with it"
    text = (
        f"Signing certificate: issuer {certificate.issuer.rfc4514_string()}, serial "
        f"{certificate.serial_number}, valid until {not_after:%Y-%m-%d %H:%M} UTC ({when})"
    )
    return SigningStatus(text, warning=left <= SIGNING_WARNING)


def signing_line(certificate: x509.Certificate, now: datetime) -> Markup:
    """The overview's line about the signing certificate: a hint, an alert box from 30 days
    before it expires (rendered by the ``signing_line`` macro of ``_macros.html``)."""
    return macro("signing_line", signing_status(certificate, now))


# --- routes ----------------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(viewer: SignedIn, dashboard: CurrentDashboard) -> Response:
    view = overview_of(dashboard)
    certificate = dashboard.certificate
    prefix = dashboard.prefix
    return page(
        dashboard,
        viewer,
        "overview.html",
        active="/",
        live_url=f"{prefix}/live.json",
        view=view,
        signing=None if certificate is None else signing_status(certificate, dashboard.clock()),
        outcomes_recorded=live_figures(view)["outcomes"],
        regions=list(CspRegion),
        region_headers=[f"{region.value.title()} CHs" for region in CspRegion],
        categories=CATEGORY_NAMES,
        not_reported=NOT_REPORTED,
        firmware_chart=chart(firmware_chart(view)),
        outcomes_chart=chart(outcomes_chart(view.timeline)),
        failures_chart=chart(outcomes_chart(view.timeline, FAILURES_AND_PENDING)),
    )


@router.get("/live.json", dependencies=[Depends(api_viewer)])
def live(dashboard: CurrentDashboard) -> Response:
    view = overview_of(dashboard)
    figures_ = live_figures(view)
    return json_response(
        {"at": view.at.strftime("%H:%M:%S UTC"), "version": fingerprint(figures_), "live": figures_}
    )


@router.get("/charts/outcomes.svg", dependencies=[Depends(api_viewer)])
def outcomes_svg(dashboard: CurrentDashboard) -> Response:
    return svg_response(outcomes_chart(overview_of(dashboard).timeline))


@router.get("/charts/failures.svg", dependencies=[Depends(api_viewer)])
def failures_svg(dashboard: CurrentDashboard) -> Response:
    return svg_response(outcomes_chart(overview_of(dashboard).timeline, FAILURES_AND_PENDING))


@router.get("/charts/firmware.svg", dependencies=[Depends(api_viewer)])
def firmware_svg(dashboard: CurrentDashboard) -> Response:
    return svg_response(firmware_chart(overview_of(dashboard)))
