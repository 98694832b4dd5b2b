"""FastAPI app for CSPs: POST CS06 answers, get one result per message.

Answers: 200 ``processed`` or ``duplicate``; 202 ``parked``: the CH is not in
the estate yet, the outcome is kept and processed when an estate import adds
it (send nothing again); 400 malformed GBCS (with the
decoder's message and byte offset); 401 missing/wrong credential; 413 body
too large; 415 wrong content type; 429 (with
Retry-After) after too many wrong credentials from one address
(``auth_max_failures``, :mod:`chfw.shared.throttle`); 503 (with
Retry-After) while the outbox backlog is over ``intake_max_backlog`` or the
database cannot be reached -- send the message again later.
"""

from dataclasses import dataclass
from typing import Annotated

import orjson
import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from chfw import __version__
from chfw.dsp.intake import campaigns_api, feed_api
from chfw.dsp.intake.backpressure import RETRY_AFTER_SECONDS, BacklogGate
from chfw.dsp.intake.inventory_api import install_inventory_api
from chfw.dsp.intake.metrics import install_intake_metrics
from chfw.dsp.processing import ActivationService, BatchTally, Status, SubmissionResult
from chfw.dsp.store import campaign_work, csps, migrate
from chfw.dsp.web.dashboard import mount_dsp_dashboard
from chfw.exceptions import UnknownCampaignError
from chfw.shared import health
from chfw.shared.bodylimit import BodyLimit
from chfw.shared.config import Settings
from chfw.shared.health import Readiness
from chfw.shared.throttle import FailureThrottle, authenticated
from chfw.shared.web.auth import DashboardAuth

log = structlog.get_logger("chfw.dsp.intake")

#: Seconds a CSP is asked to wait when the database cannot be reached.
DATABASE_RETRY_AFTER_SECONDS = 10

_STATUS_CODES = {
    Status.PROCESSED: 200,
    Status.DUPLICATE: 200,
    Status.MALFORMED: 400,
    Status.PARKED: 202,
    Status.CONFLICT: 409,
    Status.REFUSED: 403,
}

_RAW_BODY = {
    "requestBody": {
        "required": True,
        "description": "One GBCS message: raw bytes, or hex text (whitespace allowed).",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "text/plain": {"schema": {"type": "string", "example": "DF0902000000000000..."}},
        },
    }
}


class BatchRequest(BaseModel):
    """Many GBCS messages as hex strings, processed in one transaction."""

    messages: list[str] = Field(min_length=1, description="GBCS messages, hex encoded")


class MessageResult(BaseModel):
    status: str = Field(
        description="processed | duplicate | malformed | parked | conflict | refused"
    )
    key: str | None = Field(None, description="Outcome identity: CH:counter:event")
    device_id: str | None = None
    decision: str | None = Field(
        None,
        description="new_version | same_version | failure | pending | stale"
        " | version_not_carriable",
    )
    alerts: dict[str, int] | None = Field(None, description="Alerts written, by DCC alert code")
    history_id: int | None = None
    error: str | None = None
    offset: int | None = Field(None, description="Byte offset of a decoding error")
    warnings: list[str] | None = None


class BatchResult(BaseModel):
    results: list[MessageResult]
    counts: dict[str, int]


class WorkList(BaseModel):
    """The hubs a CSP should send CS06 to now, for one campaign."""

    state: str = Field(description="The campaign's state: draft | running | paused | completed")
    device_ids: list[str] = Field(
        description="Hubs now dispatched to this CSP (empty unless the campaign is running)"
    )


@dataclass(frozen=True)
class Intake:
    """What the CSP endpoints work on (``app.state.intake``)."""

    settings: Settings
    service: ActivationService
    gate: BacklogGate
    failures: FailureThrottle


def create_app(
    settings: Settings, service: ActivationService, backlog: BacklogGate | None = None
) -> FastAPI:
    """The intake app; ``service`` carries the engine and the alert builder.

    ``backlog`` is the outbox backlog check (default: one on the service's
    engine with ``settings.intake_max_backlog``).
    """
    app = FastAPI(
        title="chfw intake (CSP Management Gateway)",
        version=__version__,
        description=__doc__,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.intake_max_body_bytes)
    engine = service.engine
    app.state.intake = Intake(
        settings,
        service,
        backlog or BacklogGate(engine, settings.intake_max_backlog),
        FailureThrottle.from_settings(settings),
    )
    for error in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        app.add_exception_handler(error, database_unavailable)
    app.include_router(router)
    app.include_router(health.router)  # /healthz, /readyz
    signer = service.builder.signer
    app.state.readiness = Readiness(
        engine, migrate.CHAIN, signer.certificate if signer is not None else None
    )
    install_inventory_api(app, engine, FailureThrottle.from_settings(settings))
    app.include_router(campaigns_api.router)
    app.include_router(feed_api.router)  # on the inventory API's state and authentication
    install_intake_metrics(app, service, min_interval=settings.stats_cache_seconds)
    app.state.dashboard_auth = DashboardAuth.from_setting(
        settings.dashboard_token, throttle=FailureThrottle.from_settings(settings)
    )
    mount_dsp_dashboard(  # /dashboard
        app,
        engine,
        app.state.dashboard_auth,
        cache_seconds=settings.stats_cache_seconds,
        certificate=signer.certificate if signer is not None else None,
    )
    return app


def _intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


async def database_unavailable(request: Request, error: Exception) -> Response:
    """A database that cannot be reached (or is locked) is a reason to retry, not a 500."""
    cause = getattr(error, "orig", None) or error
    log.error("database_unavailable", path=request.url.path, error=type(cause).__name__)
    return JSONResponse(
        {"detail": "the DSP's database is unavailable; send the message again later"},
        status_code=503,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def admit(request: Request) -> None:
    """Refuse new work while the outbox backlog is over the limit."""
    current = _intake(request).gate.current()
    if current.over_limit:
        raise HTTPException(
            503,
            f"the DSP's alert backlog is over its limit ({current.limit:,} undelivered "
            "alerts); send the message again later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def authenticate(request: Request) -> str:
    """The CSP whose bearer credential the request carries (401 otherwise)."""
    intake = _intake(request)

    def csp_named(credential: str) -> str | None:
        with intake.service.engine.connect() as conn:
            return csps.authenticate(conn, credential)

    return authenticated(
        intake.failures,
        request,
        "csp",
        csp_named,
        missing="missing credential: send 'Authorization: Bearer <credential>'",
        unknown="credential not recognised",
    )


AdmitDep = Annotated[None, Depends(admit)]
CspDep = Annotated[str, Depends(authenticate)]
router = APIRouter()


async def read_body(request: Request) -> bytes:
    """The body, within the limit BodyLimit enforces while it is read."""
    try:
        return await request.body()
    except ClientDisconnect:  # the client left (or the server's request deadline passed)
        raise HTTPException(408, "the request body did not arrive") from None


@router.post(
    "/csp/v1/messages",
    tags=["csp"],
    summary="Submit one CS06 response or 0x8F66/0x8F67 alert",
    openapi_extra=_RAW_BODY,
    response_model=MessageResult,
    responses={
        400: {"description": "Malformed GBCS", "model": MessageResult},
        401: {"description": "Missing or unknown credential"},
        413: {"description": "Body too large"},
        429: {"description": "Too many wrong credentials from this address: Retry-After"},
        415: {"description": "Not application/octet-stream or text/plain"},
        202: {
            "description": "CH not in the estate yet: outcome parked, processed when an "
            "estate import adds the CH",
            "model": MessageResult,
        },
        409: {
            "description": "Same outcome identity as a recorded one, other content",
            "model": MessageResult,
        },
        403: {
            "description": "The CH is in a region this CSP does not serve",
            "model": MessageResult,
        },
        503: {"description": "Backlog over the limit or database unavailable: retry"},
    },
)
async def submit_message(request: Request, csp: CspDep, _: AdmitDep) -> JSONResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request)
    payload: bytes | str
    if content_type == "application/octet-stream":
        payload = body
    elif content_type == "text/plain":
        try:
            payload = body.decode("ascii")
        except UnicodeDecodeError:
            raise HTTPException(400, "hex body must be ASCII text") from None
    else:
        raise HTTPException(415, "send raw bytes as application/octet-stream or hex as text/plain")
    (result,) = await run_in_threadpool(_intake(request).service.submit, [payload], csp)
    return JSONResponse(result.to_json(), status_code=_STATUS_CODES[result.status])


@router.post(
    "/csp/v1/messages/batch",
    tags=["csp"],
    summary="Submit many messages (hex) in one transaction",
    response_model=BatchResult,
    responses={
        401: {"description": "Missing or unknown credential"},
        413: {"description": "More messages than intake_batch_max"},
        429: {"description": "Too many wrong credentials from this address: Retry-After"},
        503: {"description": "Backlog over the limit or database unavailable: retry"},
    },
)
async def submit_batch(batch: BatchRequest, csp: CspDep, _: AdmitDep, request: Request) -> Response:
    intake = _intake(request)
    limit = intake.settings.intake_batch_max
    if len(batch.messages) > limit:
        raise HTTPException(413, f"batch has {len(batch.messages)} messages; limit {limit}")
    results: list[SubmissionResult] = await run_in_threadpool(
        intake.service.submit, batch.messages, csp
    )
    counts = dict(BatchTally.of(results).statuses)
    # Encoded here, not returned as a dict: FastAPI would re-validate every result
    # against BatchResult (still the documented schema), and orjson encodes a
    # 500-result answer in a tenth of the standard library's time.
    answer = {"results": [r.to_json() for r in results], "counts": counts}
    return Response(orjson.dumps(answer), media_type="application/json")


@router.get(
    "/csp/v1/campaigns/{name}/work",
    tags=["csp"],
    summary="Take the hubs to send CS06 to now, from a campaign's open phase",
    response_model=WorkList,
    responses={
        401: {"description": "Missing or unknown credential"},
        404: {"description": "No campaign of that name"},
        429: {"description": "Too many wrong credentials from this address: Retry-After"},
    },
)
def campaign_work_list(
    name: str,
    csp: CspDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=campaign_work.WORK_LIMIT_MAX)] = 100,
) -> Response:
    """Up to ``limit`` hubs of the CSP's regions from the open phase, not held, not yet
    dispatched: they become dispatched to this CSP (asking again gives others). A campaign
    that is not running answers an empty list."""
    service = _intake(request).service
    with service.engine.begin() as conn:
        regions = csps.regions_of(conn, csp)
        try:
            work = campaign_work.take_work(
                conn,
                name,
                csp,
                None if regions is None else [r.value for r in regions],
                limit,
                service.clock(),
            )
        except UnknownCampaignError as exc:
            raise HTTPException(404, str(exc)) from None
    log.info(
        "campaign_work", campaign=name, csp=csp, state=work.state.value, hubs=len(work.device_ids)
    )
    # Encoded here, as the batch answer is: FastAPI would validate up to 10,000 IDs again.
    answer = {"state": work.state.value, "device_ids": [str(d) for d in work.device_ids]}
    return Response(orjson.dumps(answer), media_type="application/json")
