"""The DSP dashboard's page for one Communications Hub, and the helpers other pages share.

``/dashboard/hubs/<Device ID>``: the CH's inventory entry and meter points,
every outcome a CSP reported for it, the alerts written and every delivery
attempt of them. The search form that leads there is on several pages.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from chfw.domain import DeviceId
from chfw.exceptions import InvalidValueError
from chfw.store import estate, inventory, outbox, stats
from chfw.web.html import Html, esc, figures, fmt_int, fmt_time, link, table, when

NOT_REPORTED = "not reported"


def find_form(prefix: str, value: str = "") -> Html:
    return Html(
        f'<form class="inline" method="get" action="{prefix}/hubs" role="search">'
        '<div><label for="device_id">Find a Communications Hub</label>'
        f'<input type="search" id="device_id" name="device_id" value="{esc(value)}" '
        'placeholder="00-1D-A1-00-00-00-00-01" required></div>'
        '<button type="submit">Show</button></form>'
    )


def user_label(user_hex: str) -> str:
    try:
        return str(DeviceId.parse(user_hex))  # same EUI-64 form as User IDs
    except InvalidValueError:
        return user_hex


def hub_link(prefix: str, device_hex: str) -> Html:
    device = DeviceId.parse(device_hex)
    return Html(f'<span class="nowrap">{link(f"{prefix}/hubs/{device}", device)}</span>')


def hub_main(conn: Connection, device: DeviceId, prefix: str) -> Html | None:
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
            user(user_label(a.user_id)),
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
        f"{head}{find_form(prefix, str(device))}"
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
