"""The supplier's alert endpoint over HTTP: read within the size limit, check, record, answer.

Answers: 204 accepted (or a verified duplicate); 400 refused, the reason as
plain text; 413 body over the limit (refused from Content-Length when the
sender declares it, else as soon as the streamed body passes the limit, without
reading the rest); 503 (with Retry-After) when the alert could not be recorded or its
check overran (the DSP retries).
The DSP treats 400 and 413 as final.

The alert POST is the hot path (thousands per second in a firmware wave), so
it is served as plain ASGI ahead of FastAPI's routing, which costs more than
the rest of the request; everything else (``/healthz``, what other modules
add) is ordinary FastAPI. Checking is CPU work and runs on threads of its own
with a deadline (:class:`~chfw.supplier.checking.CheckPool`: 503 when it
overruns), never on the event loop; the alerts whose checks finish in one turn
of the loop go together to a :class:`~chfw.supplier.writer.RecordWriter`
thread, which commits many alerts per transaction (group commit).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from chfw import __version__
from chfw.shared.bodylimit import BodyLimit, BodyTooLarge, declared_length, read_within
from chfw.shared.web.auth import FORM_MAX_BYTES, DashboardAuth
from chfw.supplier.checking import CheckPool
from chfw.supplier.dashboard import mount_supplier_dashboard
from chfw.supplier.dsp_client import DspClient
from chfw.supplier.metrics import ReceiverMetrics, install_receiver_metrics
from chfw.supplier.pipeline import Accepted, AlertReceiver, Checked, Outcome, ReceiverConfig
from chfw.supplier.writer import LoopBatcher, RecordWriter

log = structlog.get_logger("chfw.supplier")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_UNRECORDED = "the alert could not be recorded (database unavailable); send it again later"


class ReceiverApp(FastAPI):
    """FastAPI, with the alert POST answered before routing."""

    receiver: AlertReceiver
    checks: CheckPool
    writer: RecordWriter
    batcher: LoopBatcher
    metrics: ReceiverMetrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == self.receiver.config.path
        ):
            await self._alert(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _alert(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        remote = client[0] if client else None
        started = time.perf_counter()
        checked = await self._read_and_check(scope, receive, remote)
        if checked is None:  # the client went away before sending its body
            return
        self.metrics.checked(time.perf_counter() - started)
        result = await self.batcher.record(checked)
        if isinstance(result, Exception):
            self.metrics.unrecorded()
            response_id = (
                checked.facts.response_id if isinstance(checked, Accepted) else checked.response_id
            )
            log.error(
                "alert_not_recorded", remote=remote, response_id=response_id, error=repr(result)
            )
            await _answer(send, 503, _UNRECORDED)
            return
        outcome: Outcome = self.receiver.finish(checked, result)
        self.metrics.answered(outcome)
        await _answer(send, outcome.status, outcome.reason)

    async def _read_and_check(
        self, scope: Scope, receive: Receive, remote: str | None
    ) -> Checked | None:
        limit = self.receiver.config.max_bytes
        declared = declared_length(scope["headers"])
        if declared is not None and declared > limit:
            return self.receiver.too_large(declared, remote)
        try:
            body = await read_within(receive, limit)
        except BodyTooLarge as too_large:  # the rest is never read, nor buffered
            return self.receiver.too_large(too_large.size, remote)
        if body is None:  # the client went away before sending its body
            return None
        return await self.checks.check(body, remote)


async def _answer(send: Send, status: int, reason: str | None) -> None:
    if status == 204:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body = (reason or "").encode()
    headers = [_TEXT, (b"content-length", str(len(body)).encode())]
    if status == 413:  # the unread rest of the body makes the connection unusable
        headers.append((b"connection", b"close"))
    if status == 503:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


router = APIRouter()


@router.get("/healthz", tags=["operations"])
def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_receiver_app(
    config: ReceiverConfig,
    engine: Engine,
    *,
    dashboard_token: str | None = None,
    dsp: DspClient | None = None,
) -> ReceiverApp:
    """The receiver app (a FastAPI); ``engine`` must point at a migrated database.

    ``dashboard_token`` signs in to ``/dashboard`` (None: a random one, in
    ``app.state.dashboard_auth``); ``/metrics`` serves Prometheus metrics. ``dsp``
    (our Service User at the DSP) lets the dashboard show and hold the DCC's campaigns.
    """
    app = ReceiverApp(
        title="chfw supplier alert receiver", version=__version__, description=__doc__
    )
    # Every other route (the dashboard's sign-in form included) reads small bodies or none;
    # the alert POST, answered ahead of this middleware, has config.max_bytes.
    app.add_middleware(BodyLimit, max_bytes=FORM_MAX_BYTES)
    app.receiver = AlertReceiver(config, engine)
    app.checks = CheckPool(app.receiver)
    app.writer = RecordWriter(app.receiver)
    app.batcher = LoopBatcher(app.writer)

    app.include_router(router)
    app.metrics = install_receiver_metrics(app, engine)
    app.state.dashboard_auth = DashboardAuth.from_setting(dashboard_token, realm="supplier")
    app.state.dsp_client = dsp
    mount_supplier_dashboard(app, engine, app.state.dashboard_auth)

    return app
