"""The DSP dashboard's campaign pages and their pause/resume actions (issue 22).

``/dashboard/campaigns`` (template ``campaigns.html``): every campaign with its
state, reason, gates and each phase's counts; ``/dashboard/campaigns/<name>`` the
same for one. Its forms post to ``/dashboard/campaigns/<name>/pause`` and
``/resume``: CSRF-checked like the replay form, audited with the signed-in operator
as actor (``dashboard:<name>``). A paused campaign resumes only by hand.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from chfw.dsp.store import audit, campaigns
from chfw.exceptions import StoreError, UnknownCampaignError
from chfw.shared.db.engine import reading
from chfw.shared.web.auth import Viewer
from chfw.shared.web.common import CurrentDashboard, Dashboard, SignedIn, checked_form, page
from chfw.shared.web.render import SECURITY_HEADERS

log = structlog.get_logger("chfw.shared.web")

ACTIONS = ("pause", "resume")

router = APIRouter(include_in_schema=False)


def read_statuses(
    engine: Engine, now: datetime, name: str | None = None
) -> list[campaigns.CampaignStatus]:
    """Every campaign's status, newest first (or the one named; empty if unknown)."""
    with reading(engine) as conn:
        if name is not None:
            found = campaigns.find(conn, name)
            return [] if found is None else [campaigns.status(conn, name, now)]
        return [campaigns.status(conn, c.name, now) for c in campaigns.list_campaigns(conn)]


def _show(
    dashboard: Dashboard,
    viewer: Viewer,
    statuses: list[campaigns.CampaignStatus],
    single: str | None,
    notice: str | None,
) -> Response:
    return page(
        dashboard,
        viewer,
        "campaigns.html",
        active="/campaigns",
        statuses=statuses,
        describe_gates=campaigns.describe_gates,
        single=single,
        notice=notice,
    )


@router.get("/campaigns")
def campaign_list(viewer: SignedIn, dashboard: CurrentDashboard, done: str = "") -> Response:
    statuses = read_statuses(dashboard.engine, dashboard.clock())
    return _show(dashboard, viewer, statuses, single=None, notice=done or None)


@router.get("/campaigns/{name}")
def campaign(name: str, viewer: SignedIn, dashboard: CurrentDashboard, done: str = "") -> Response:
    statuses = read_statuses(dashboard.engine, dashboard.clock(), name)
    if not statuses:
        return page(
            dashboard,
            viewer,
            "refused.html",
            404,
            heading="No such campaign",
            message=f"There is no campaign {name!r}.",
            announce=True,
        )
    return _show(dashboard, viewer, statuses, single=name, notice=done or None)


def change(engine: Engine, name: str, action: str, viewer: Viewer, now: datetime) -> str:
    """Pause or resume the campaign, audited; returns what the page says after it."""
    try:
        with engine.begin() as conn:
            changed = campaigns.change_state(conn, name, action, actor=viewer.actor, now=now)
            audit.record(
                conn,
                viewer.actor,
                f"campaign.{action}",
                {"campaign": name, "state": changed.state.value},
                at=now,
            )
    except UnknownCampaignError:
        return f"There is no campaign {name!r}."
    except StoreError as exc:
        return f"Nothing changed: {exc}."
    log.info("campaign_changed", campaign=name, action=action, actor=viewer.actor)
    return f"Campaign {name} is {changed.state.value}."


@router.post("/campaigns/{name}/{action}")
async def act(
    name: str, action: str, request: Request, viewer: SignedIn, dashboard: CurrentDashboard
) -> Response:
    bad_action = None if action in ACTIONS else f"{action!r} is not an action (pause, resume)"
    form = await checked_form(request, dashboard, viewer, "Change", bad_action)
    if isinstance(form, Response):
        return form
    notice = await run_in_threadpool(
        change, dashboard.engine, name, action, viewer, dashboard.clock()
    )
    return RedirectResponse(
        f"{dashboard.prefix}/campaigns/{quote(name, safe='')}?{urlencode({'done': notice})}",
        status_code=303,
        headers=SECURITY_HEADERS,
    )
