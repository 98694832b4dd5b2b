"""The DSP dashboard's page for one Communications Hub.

``/dashboard/hubs/<Device ID>`` (template ``hub.html``): the CH's inventory
entry and meter points, every outcome a CSP reported for it, the alerts
written and every delivery attempt of them. ``/dashboard/hubs?device_id=``
(the search form on several pages) redirects there.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Connection

from chfw.core.domain import DeviceId, MeterPoint
from chfw.dsp.store import campaigns, estate, inventory, outbox, stats
from chfw.exceptions import InvalidValueError
from chfw.shared.db.engine import reading
from chfw.shared.web.auth import Viewer
from chfw.shared.web.common import CurrentDashboard, Dashboard, SignedIn, page
from chfw.shared.web.render import SECURITY_HEADERS


@dataclass(frozen=True)
class HubView:
    """Everything on a CH's page, read over one connection."""

    hub: estate.Hub
    points: list[MeterPoint]
    history: list[inventory.HistoryEntry]
    alerts: list[outbox.OutboxRow]
    attempts: list[stats.HubAttempt]
    campaigns: list[campaigns.HubMembership]


def read_hub(conn: Connection, device: DeviceId) -> HubView | None:
    """The CH's page, or None when it is not in the estate."""
    hub = estate.get_hub(conn, device)
    if hub is None:
        return None
    return HubView(
        hub=hub,
        points=estate.meter_points_for(conn, device),
        history=inventory.history_for(conn, device),
        alerts=outbox.list_rows(conn, device_id=device.hex, limit=500),
        attempts=stats.attempts_for_device(conn, device.hex),
        campaigns=campaigns.campaigns_of_hub(conn, device),
    )


def _missing(
    dashboard: Dashboard,
    viewer: Viewer,
    heading: str,
    problem: str,
    search: str,
    status_code: int = 200,
) -> Response:
    """A CH's page that cannot be shown: why, and the search form holding ``search``."""
    return page(
        dashboard,
        viewer,
        "hub_missing.html",
        status_code,
        heading=heading,
        problem=problem,
        search=search,
    )


router = APIRouter(include_in_schema=False)


@router.get("/hubs")
def find_hub(
    viewer: SignedIn,
    dashboard: CurrentDashboard,
    device_id: str = "",
) -> Response:
    try:
        device = DeviceId.parse(device_id.strip())
    except InvalidValueError as exc:
        heading = "Find a Communications Hub"
        return _missing(dashboard, viewer, heading, str(exc), device_id)
    return RedirectResponse(
        f"{dashboard.prefix}/hubs/{device}", status_code=303, headers=SECURITY_HEADERS
    )


@router.get("/hubs/{device_id}")
def hub(device_id: str, viewer: SignedIn, dashboard: CurrentDashboard) -> Response:
    try:
        device = DeviceId.parse(device_id)
    except InvalidValueError as exc:
        return _missing(dashboard, viewer, "Not a Device ID", str(exc), "")
    with reading(dashboard.engine) as conn:
        view = read_hub(conn, device)
    if view is None:
        problem = f"CH {device} is not in the estate."
        return _missing(dashboard, viewer, f"CH {device}", problem, str(device), 404)
    return page(dashboard, viewer, "hub.html", device=device, view=view)
