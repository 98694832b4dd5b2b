"""Service Users see and act on the DCC's campaigns, over their own hubs only (issue 22).

With the inventory token (``chfw users token``), beside the inventory API:

- ``GET /su/v1/campaigns``: ``{"campaigns": [status, ...]}``, the campaigns touching
  one of the user's hubs, newest first, each counted over the user's hubs only;
- ``GET /su/v1/campaigns/NAME``: one such status: ``{"name", "target_version",
  "state", "reason", "gates", "phases": [{"label", "size", "state", "dispatched",
  "succeeded", "failed", "unconfirmed", "held"}]}``; the state, reason and phase
  states are the campaign's, the counts the user's;
- ``POST /su/v1/campaigns/NAME/holds`` with ``{"device_ids": [...], "reason": "..."}``:
  the user's hubs not yet dispatched are held (out of every phase from now on,
  recorded with the user and reason); answers ``{"campaign", "held": [...],
  "not_held": [{"device_id", "reason"}]}`` (already dispatched, already held, not in
  this campaign). A hub the user is not a supplier of refuses the whole request.

404 for an unknown campaign, one that touches none of the user's hubs, or a hold
naming a hub that is not the user's -- one answer for all, as the inventory API
gives, so that a token does not tell which CHs or campaigns exist.
"""

# No `from __future__ import annotations`: FastAPI reads the Annotated aliases at runtime.
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId
from chfw.dsp.intake.inventory_api import UserDep, inventory_engine
from chfw.dsp.store import campaign_work, campaigns
from chfw.exceptions import HubNotSuppliedError, InvalidValueError, UnknownCampaignError
from chfw.shared.db.engine import reading

log = structlog.get_logger("chfw.dsp.intake.campaigns")

HOLD_MAX = 10_000
_NOT_FOUND = "no campaign {name!r} touching a CH this Service User supplies"
_NOT_YOURS = "a CH in the request is not one this Service User supplies: nothing held"

router = APIRouter(tags=["service users"])
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unrecognised token"},
    429: {"description": "Too many wrong tokens from this address: Retry-After"},
}


class HoldRequest(BaseModel):
    device_ids: list[str] = Field(min_length=1, max_length=HOLD_MAX)
    reason: str = Field(min_length=1, max_length=500)


@router.get("/su/v1/campaigns", summary="Campaigns touching this user's CHs", responses=_RESPONSES)
def list_campaigns(user: UserDep, request: Request) -> dict[str, Any]:
    now = utc_now()
    with reading(inventory_engine(request)) as conn:
        found = campaigns.list_campaigns(conn, user)
        statuses = [campaigns.status(conn, c.name, now, user).as_json() for c in found]
    return {"campaigns": statuses}


@router.get(
    "/su/v1/campaigns/{name}",
    summary="A campaign's status over this user's CHs",
    responses={**_RESPONSES, 404: {"description": "Unknown, or touches none of its CHs"}},
)
def campaign_status(name: str, user: UserDep, request: Request) -> dict[str, Any]:
    with reading(inventory_engine(request)) as conn:
        found = campaigns.find(conn, name)
        if found is None or not campaigns.touches_user(conn, found, user):
            raise HTTPException(404, _NOT_FOUND.format(name=name))
        return campaigns.status(conn, name, utc_now(), user).as_json()


@router.post(
    "/su/v1/campaigns/{name}/holds",
    summary="Hold this user's CHs out of a campaign's later phases",
    responses={
        **_RESPONSES,
        400: {"description": "Not a Device ID"},
        404: {"description": "Unknown campaign, or a CH this user does not supply"},
    },
)
def place_holds(name: str, body: HoldRequest, user: UserDep, request: Request) -> dict[str, Any]:
    try:
        devices = [DeviceId.parse(d) for d in body.device_ids]
    except InvalidValueError as exc:
        raise HTTPException(400, str(exc)) from None
    with inventory_engine(request).begin() as conn:
        try:
            found = campaigns.find(conn, name)
            if found is None or not campaigns.touches_user(conn, found, user):
                raise UnknownCampaignError(name)
            holds = campaign_work.hold(conn, name, user, devices, body.reason, utc_now())
        except UnknownCampaignError:
            raise HTTPException(404, _NOT_FOUND.format(name=name)) from None
        except HubNotSuppliedError:
            log.warning("campaign_hold_refused", campaign=name, user_id=str(user))
            raise HTTPException(404, _NOT_YOURS) from None
    log.info(
        "campaign_holds",
        campaign=name,
        user_id=str(user),
        held=len(holds.held),
        not_held=len(holds.not_held),
        reason=body.reason,
    )
    return {
        "campaign": name,
        "held": [str(d) for d in holds.held],
        "not_held": [{"device_id": str(d), "reason": why} for d, why in holds.not_held],
    }
