"""The supplier's alert endpoint over HTTP: read within the size limit, hand to the pipeline.

Answers: 204 accepted (or a verified duplicate); 400 refused, the reason as
plain text; 413 body over the limit (refused from Content-Length when the
sender declares it, else as soon as the streamed body passes the limit, without
reading the rest). The DSP treats 400 and 413 as final and 5xx as retryable.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from chfw import __version__
from chfw.receiver.pipeline import AlertReceiver, Outcome, ReceiverConfig

_RAW_BODY = {
    "requestBody": {
        "required": True,
        "description": "One signed DUIS Response carrying a DCC alert (XML-DSig, DCC's profile).",
        "content": {"application/xml": {"schema": {"type": "string"}}},
    }
}


def create_receiver_app(config: ReceiverConfig, engine: Engine) -> FastAPI:
    """The receiver app; ``engine`` must point at a migrated database."""
    receiver = AlertReceiver(config, engine)
    app = FastAPI(title="chfw supplier alert receiver", version=__version__, description=__doc__)
    app.state.receiver = receiver
    limit = config.max_bytes

    @app.post(
        config.path,
        status_code=204,
        summary="Receive one signed DUIS alert",
        openapi_extra=_RAW_BODY,
        responses={
            400: {"description": "Refused: unsigned, untrusted, altered, unsafe or invalid"},
            413: {"description": "Body over the size limit"},
        },
    )
    async def receive(request: Request) -> Response:
        remote = request.client.host if request.client else None
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _answer(await run_in_threadpool(receiver.too_large, int(declared), remote))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:  # stop reading: the rest is never buffered
                return _answer(await run_in_threadpool(receiver.too_large, len(body), remote))
        return _answer(await run_in_threadpool(receiver.receive, bytes(body), remote))

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def _answer(outcome: Outcome) -> Response:
    if outcome.accepted:
        return Response(status_code=204)
    headers = {"connection": "close"} if outcome.status == 413 else None
    return PlainTextResponse(outcome.reason or "", status_code=outcome.status, headers=headers)
