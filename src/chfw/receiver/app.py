"""The supplier's alert endpoint: verify, check, deduplicate, record, answer 204.

Order of checks (each failure answers 4xx with the reason, logs it, records
nothing but the rejection): size (413) -> safe parse -> signature against the
trust store -> schema of the DUIS version -> record. Only a verified document
can be a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from chfw import __version__
from chfw.domain import DeviceId, DuisVersion
from chfw.duis import SchemaSet
from chfw.exceptions import ChfwError, InvalidValueError
from chfw.receiver import backoffice
from chfw.receiver.facts import read_alert
from chfw.signing import TrustStore, verify_document

log = structlog.get_logger("chfw.receiver")

DEFAULT_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ReceiverConfig:
    trust: TrustStore
    schemas: SchemaSet
    duis_version: DuisVersion | None = None  # None: the document's schemaVersion
    max_bytes: int = DEFAULT_MAX_BYTES
    path: str = "/"
    on_lookup_needed: Callable[[DeviceId], None] | None = field(default=None, compare=False)


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _now() -> datetime:
    return datetime.now(UTC)


def create_receiver_app(config: ReceiverConfig, engine: Engine) -> FastAPI:
    app = FastAPI(title="chfw supplier alert receiver", version=__version__, description=__doc__)

    def accept(body: bytes, remote: str | None) -> backoffice.RecordResult:
        now = _now()
        try:
            try:
                verified = verify_document(body, config.trust)
            except ChfwError as exc:
                raise Rejected(400, f"signature not accepted: {exc}") from None
            declared = verified.root.get("schemaVersion", "")
            try:
                version = config.duis_version or DuisVersion.parse(declared)
            except InvalidValueError as exc:
                raise Rejected(400, f"schemaVersion: {exc}") from None
            if config.duis_version and declared != str(config.duis_version):
                raise Rejected(
                    400,
                    f"schemaVersion {declared!r} is not this endpoint's DUIS version "
                    f"{config.duis_version}",
                )
            try:
                config.schemas.validate(verified.content, version)
                facts = read_alert(verified.root)
            except ChfwError as exc:
                raise Rejected(400, str(exc)) from None
        except Rejected as rejection:
            with engine.begin() as conn:
                backoffice.record_rejection(
                    conn,
                    status_code=rejection.status,
                    reason=rejection.reason,
                    remote=remote,
                    size=len(body),
                    now=now,
                )
            raise
        signer = verified.certificate.subject.rfc4514_string()
        with engine.begin() as conn:
            result = backoffice.record_alert(conn, facts, body, signer, now)
        log.info(
            "alert_received",
            response_id=facts.response_id,
            alert_code=facts.alert_code,
            device_id=str(facts.device_id) if facts.device_id else None,
            firmware_version=facts.firmware_version.hex if facts.firmware_version else None,
            duplicate=result.duplicate,
        )
        if result.lookup_needed and facts.device_id and config.on_lookup_needed:
            config.on_lookup_needed(facts.device_id)
        return result

    @app.post(config.path, status_code=204, summary="Receive one signed DUIS alert")
    async def receive(request: Request) -> Response:
        remote = request.client.host if request.client else None
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_bytes:
                reason = f"body exceeds {config.max_bytes} bytes"
                await run_in_threadpool(_record_oversize, engine, reason, remote, len(body))
                log.warning("alert_rejected", status=413, reason=reason, remote=remote)
                return PlainTextResponse(reason, status_code=413)
        try:
            await run_in_threadpool(accept, bytes(body), remote)
        except Rejected as rejection:
            log.warning(
                "alert_rejected", status=rejection.status, reason=rejection.reason, remote=remote
            )
            return PlainTextResponse(rejection.reason, status_code=rejection.status)
        return Response(status_code=204)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def _record_oversize(engine: Engine, reason: str, remote: str | None, size: int) -> None:
    with engine.begin() as conn:
        backoffice.record_rejection(
            conn, status_code=413, reason=reason, remote=remote, size=size, now=_now()
        )
