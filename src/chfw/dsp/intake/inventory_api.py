"""Service Users read a CH's inventory entry (the DUIS SR 8.2 "Read Inventory" analogue).

``GET /su/v1/inventory/{device_id}`` with ``Authorization: Bearer <token>``
(a Service User's inventory token, ``chfw users token``). A supplier's
receiver calls it when an N999 stood in for an N64 and so carried no
firmware version.

Answers: 200 the entry; 400 the path is not a Device ID; 401 missing or
unrecognised token; 429 (with Retry-After) after too many wrong tokens from
one address (:mod:`chfw.shared.throttle`); 404 the CH is unknown *or* the user is not one of its
Responsible Suppliers -- one answer for both, so that a token does not let
anyone probe which CHs exist in the estate.
"""

# No `from __future__ import annotations`: FastAPI reads the Annotated aliases at runtime.
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, UserId
from chfw.dsp.store import inventory_access
from chfw.exceptions import InvalidValueError
from chfw.shared.throttle import FailureThrottle, authenticated

log = structlog.get_logger("chfw.dsp.intake.inventory")

PATH = "/su/v1/inventory/{device_id}"


class InventoryEntry(BaseModel):
    """What the inventory holds for one CH."""

    device_id: str = Field(description="Device ID, DUIS form (00-1D-A1-00-00-00-00-01)")
    firmware_version: str | None = Field(
        description="Active firmware, upper-case hex; null when no activation was ever reported"
    )
    firmware_changed_at: str | None = Field(description="When it became active (ISO 8601, UTC)")
    csp_region: str = Field(description="north | central | south")
    status: str = Field(description="The CH's status in the estate, e.g. commissioned")


_NOT_FOUND = "no CH {device} that this Service User is a Responsible Supplier of"


@dataclass(frozen=True)
class InventoryApi:
    """What the read endpoint works on: the DSP's database and the wrong-token limit."""

    engine: Engine
    throttle: FailureThrottle


def install_inventory_api(
    app: FastAPI, engine: Engine, failures: FailureThrottle | None = None
) -> None:
    """Serve the read endpoint on ``app`` over ``engine``'s inventory and Service Users;
    ``failures`` limits wrong tokens per client (default: chfw.shared.throttle's defaults)."""
    app.state.inventory_api = InventoryApi(engine, failures or FailureThrottle())
    app.include_router(router)


def _api(request: Request) -> InventoryApi:
    api: InventoryApi = request.app.state.inventory_api
    return api


def inventory_engine(request: Request) -> Engine:
    """The DSP database the Service User endpoints read (the campaign API's too)."""
    return _api(request).engine


def authenticate(request: Request) -> UserId:
    """The Service User whose inventory token the request carries (401 otherwise)."""
    api = _api(request)

    def user_of(token: str) -> UserId | None:
        with api.engine.connect() as conn:
            return inventory_access.authenticate(conn, token)

    return authenticated(
        api.throttle,
        request,
        "inventory",
        user_of,
        missing="missing token: send 'Authorization: Bearer <token>' "
        "(a Service User's inventory token, from `chfw users token`)",
        unknown="token not recognised",
    )


UserDep = Annotated[UserId, Depends(authenticate)]
router = APIRouter(tags=["service users"])


@router.get(
    PATH,
    summary="Read a CH's active firmware (Responsible Suppliers only)",
    response_model=InventoryEntry,
    responses={
        400: {"description": "Not a Device ID"},
        401: {"description": "Missing or unrecognised token"},
        429: {"description": "Too many wrong tokens from this address: Retry-After"},
        404: {"description": "Unknown CH, or not one this user supplies"},
    },
)
def read_inventory(device_id: str, user: UserDep, request: Request) -> InventoryEntry:
    try:
        device = DeviceId.parse(device_id)
    except InvalidValueError as exc:
        raise HTTPException(400, str(exc)) from None
    with _api(request).engine.connect() as conn:
        hub = inventory_access.read_hub(conn, user, device)
    log.info("inventory_read", user_id=str(user), device_id=str(device), found=hub is not None)
    if hub is None:
        raise HTTPException(404, _NOT_FOUND.format(device=device))
    return InventoryEntry(
        device_id=str(hub.device_id),
        firmware_version=hub.active_firmware.hex if hub.active_firmware else None,
        firmware_changed_at=(
            hub.firmware_changed_at.isoformat() if hub.firmware_changed_at else None
        ),
        csp_region=hub.csp_region.value,
        status=hub.status,
    )
