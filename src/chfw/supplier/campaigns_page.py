"""The supplier dashboard's DCC campaigns page, and holds placed from it (issue 22 item 7).

``/dashboard/campaigns`` (template ``supplier_campaigns.html``) lists the DCC's
campaigns that touch this supplier's CHs, beside its own pilots, with each
phase's counts over its own hubs, as the DSP answers them (read each time,
through :mod:`chfw.supplier.dcc_campaigns`). Each campaign has a form that posts
to ``/dashboard/campaigns/<name>/holds``: CSRF-checked like every dashboard
form, passed on to the DSP, logged with the signed-in person, answered with
what the DSP held and what it did not.
"""

from __future__ import annotations

from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from chfw.shared.web.common import CurrentDashboard, SignedIn, checked_form, page
from chfw.shared.web.render import SECURITY_HEADERS
from chfw.supplier.dcc_campaigns import COUNTS, device_list, place_holds, read_campaigns
from chfw.supplier.dsp_client import DspClient

log = structlog.get_logger("chfw.supplier.dashboard")

NOTICE_MAX = 600  # a redirect's query string stays short, however many hubs were named

router = APIRouter(include_in_schema=False)


def dsp_of(request: Request) -> DspClient | None:
    """The DSP client the receiver was started with (``--dsp-url``), or None."""
    client: DspClient | None = getattr(request.app.state, "dsp_client", None)
    return client


@router.get("/campaigns")
async def campaign_list(
    request: Request, viewer: SignedIn, dashboard: CurrentDashboard, done: str = ""
) -> Response:
    found = await run_in_threadpool(read_campaigns, dsp_of(request))
    return page(
        dashboard,
        viewer,
        "supplier_campaigns.html",
        active="/campaigns",
        view=found,
        counts=[name.capitalize() for name in COUNTS],
        notice=done[:NOTICE_MAX] or None,
    )


@router.post("/campaigns/{name}/holds")
async def hold(
    name: str, request: Request, viewer: SignedIn, dashboard: CurrentDashboard
) -> Response:
    form = await checked_form(request, dashboard, viewer, "Hold")
    if isinstance(form, Response):
        return form
    devices = device_list((form.get("device_ids") or [""])[0])
    reason = (form.get("reason") or [""])[0]
    notice = await run_in_threadpool(place_holds, dsp_of(request), name, devices, reason)
    log.info("campaign_hold", campaign=name, hubs=len(devices), actor=viewer.actor, result=notice)
    if len(notice) > NOTICE_MAX:
        notice = notice[: NOTICE_MAX - 1] + "…"
    return RedirectResponse(
        f"{dashboard.prefix}/campaigns?{urlencode({'done': notice})}",
        status_code=303,
        headers=SECURITY_HEADERS,
    )
