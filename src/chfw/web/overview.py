"""The DSP dashboard's overview: its figures, live updates, charts.

``/dashboard/``: the firmware distribution (CHs per active version and CSP
region, each version's share), activation outcomes over time, and alert
delivery health per Service User. :func:`live_figures` is the same page as
text keyed like the page's ``data-live`` elements, for ``/dashboard/live.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from cryptography import x509
from sqlalchemy.engine import Connection

from chfw.domain import FirmwareVersion
from chfw.estate_file import CspRegion
from chfw.store import estate, outbox, parked_outcomes, stats
from chfw.web import svg
from chfw.web.html import (
    Html,
    esc,
    figures,
    fmt_int,
    fmt_seconds,
    fmt_share,
    fmt_time,
    live_cell,
    table,
)
from chfw.web.hub_page import NOT_REPORTED, find_form, user_label

CATEGORY_NAMES = {
    "success": "Success",
    "no_image_held": "No image held",
    "hash_mismatch": "Hash mismatch",
    "activation_failure": "Activation failure",
    "pending": "Pending (future-dated)",
}


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
    oldest_due_seconds: float | None
    parked_outcomes: int = 0  # outcomes for CHs not in the estate yet (`chfw parked list`)

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
        parked_outcomes=parked_outcomes.count(conn),
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
        "outbox.parked": fmt_int(view.counts["parked"]),
        "outbox.delivered": fmt_int(view.counts["delivered"]),
        "parked_outcomes": fmt_int(view.parked_outcomes),
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


FAILURES_AND_PENDING = tuple(name for name in CATEGORY_NAMES if name != "success")


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


SIGNING_WARNING = timedelta(days=30)


def signing_line(certificate: x509.Certificate, now: datetime) -> Html:
    """The signing certificate's issuer, serial and expiry; an error box from 30 days before."""
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
    if left > SIGNING_WARNING:
        return Html(f'<p class="hint" id="signing-certificate">{esc(text)}</p>')
    return Html(
        f'<p class="error" role="alert" id="signing-certificate">{esc(text)}. Roll over to '
        "a new key before then: alerts not yet delivered are re-signed with it "
        "(docs/deployment.md, key rollover).</p>"
    )


def overview_main(view: Overview, prefix: str, signing: Html | None = None) -> Html:
    """The overview page; ``signing``: the signing certificate's line (:func:`signing_line`)."""
    counts = view.counts
    head = figures(
        [
            ("Communications Hubs", fmt_int(view.hubs), "hubs"),
            ("Outcomes recorded", live_figures(view)["outcomes"], "outcomes"),
            ("Alerts pending", fmt_int(counts["pending"]), "outbox.pending"),
            ("… of which retrying", fmt_int(counts["retrying"]), "outbox.retrying"),
            ("Dead letters", fmt_int(counts["dead"]), "outbox.dead"),
            # Alerts not built (a user's DUIS version without schema): `chfw outbox retry`.
            ("Alerts parked", fmt_int(counts["parked"]), "outbox.parked"),
            # Outcomes for CHs not in the estate yet: the import that adds them processes
            # them (`chfw parked list`).
            ("Outcomes parked", fmt_int(view.parked_outcomes), "parked_outcomes"),
            ("Delivered, last hour", fmt_int(view.delivered_recently), "delivered.recent"),
            (
                "Longest wait of a due alert",
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
                    f"<span class=mono>{esc(user_label(user.user_id))}</span>"
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
        f"{head}{signing or ''}{find_form(prefix)}"
        "<h2>Firmware distribution</h2>"
        f'<div class="grid"><div>{distribution}</div>'
        f"<figure><figcaption>Share of CHs per version</figcaption>"
        f'<div data-chart="{prefix}/charts/firmware.svg">{firmware_chart(view)}</div>'
        "</figure></div>"
        "<h2>Activation outcomes over time</h2>"
        "<figure><figcaption>Cumulative outcomes by the time chfw recorded them</figcaption>"
        f'<div data-chart="{prefix}/charts/outcomes.svg">{outcomes_chart(view.timeline)}</div>'
        '</figure><div class="grid"><figure><figcaption>Failures and pending only</figcaption>'
        f'<div data-chart="{prefix}/charts/failures.svg">'
        f"{outcomes_chart(view.timeline, FAILURES_AND_PENDING)}</div></figure>"
        f"<div>{outcomes}</div></div>"
        "<h2>Alert delivery</h2>"
        f"{delivery}"
    )
