"""Receiver tests' DSP and server: real signed alerts made the DSP's way, a real uvicorn."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.core.duis import SR_NAMESPACE, ResponseId, render_n64, render_n999, response_date_time
from chfw.core.signing import (
    PemSigner,
    Signer,
    TrustStore,
    create_development_identity,
    sign_canonical,
)
from tests.live import start_server, stop_server

DCC = UserId.parse("90-B3-D5-1F-30-00-00-02")
CH = DeviceId.parse("00-1D-A1-00-00-00-00-42")
CH2 = DeviceId.parse("00-1D-A1-00-00-00-00-43")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Dsp:
    """Makes alerts exactly as the DSP side does: core.duis renders, core.signing signs."""

    signer: Signer
    cert_pem: bytes
    key_pem: bytes = b""
    counter: count[int] = field(default_factory=lambda: count(1))

    @classmethod
    def create(cls, common_name: str = "test DSP", **identity: Any) -> Dsp:
        key_pem, cert_pem = create_development_identity(common_name, **identity)
        return cls(PemSigner.from_pem(key_pem, cert_pem), cert_pem, key_pem)

    @property
    def trust(self) -> TrustStore:
        return TrustStore.from_pem(self.cert_pem)

    def response_id(self, device: DeviceId = CH, counter: int | None = None) -> ResponseId:
        return ResponseId(DCC, device, next(self.counter) if counter is None else counter)

    def n64(
        self,
        version: str = "02010300",
        *,
        device: DeviceId = CH,
        at: datetime = T0,
        counter: int | None = None,
        duis: str = "5.1",
    ) -> bytes:
        document = render_n64(
            response_id=self.response_id(device, counter),
            device_id=device,
            firmware_version=FirmwareVersion.parse(version),
            duis_version=DuisVersion.parse(duis),
            at=at,
        )
        return sign_canonical(document, self.signer)

    def n999(self, *, device: DeviceId = CH, at: datetime = T0, duis: str = "5.0") -> bytes:
        document = render_n999(
            response_id=self.response_id(device),
            device_id=device,
            duis_version=DuisVersion.parse(duis),
            at=at,
        )
        return sign_canonical(document, self.signer)

    def unsigned(self, code: str, alert_body: str, **kwargs: Any) -> bytes:
        return other_alert(str(self.response_id()), code, alert_body, **kwargs)

    def other(self, code: str, alert_body: str, **kwargs: Any) -> bytes:
        """Another DCC alert code with the given DCCAlert content (canonical XML text)."""
        return sign_canonical(self.unsigned(code, alert_body, **kwargs), self.signer)


def other_alert(
    response_id: str,
    code: str,
    alert_body: str,
    *,
    at: datetime = T0,
    duis: str = "5.1",
    header_extra: str = "",
) -> bytes:
    """A canonical, unsigned DCC alert document with any code and DCCAlert content."""
    return (
        f'<sr:Response xmlns:sr="{SR_NAMESPACE}" schemaVersion="{duis}"><sr:Header>'
        f"<sr:ResponseID>{response_id}</sr:ResponseID>{header_extra}"
        f"<sr:ResponseCode>I0</sr:ResponseCode>"
        f"<sr:ResponseDateTime>{response_date_time(at)}</sr:ResponseDateTime></sr:Header>"
        f"<sr:Body><sr:DCCAlertMessage><sr:DCCAlertCode>{code}</sr:DCCAlertCode>"
        f"<sr:DCCAlert>{alert_body}</sr:DCCAlert></sr:DCCAlertMessage></sr:Body></sr:Response>"
    ).encode()


POWER_OUTAGE = (
    "<sr:PowerOutageEvent><sr:CommsHubDeviceID>00-1D-A1-00-00-00-00-42</sr:CommsHubDeviceID>"
    "<sr:StartDateTime>2026-03-01T08:55:00Z</sr:StartDateTime><sr:MPxN>1000000000001</sr:MPxN>"
    "</sr:PowerOutageEvent>"
)
"""A DCCAlert body the official DUIS schema accepts and chfw's bundled subset does not define."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread; ``stop()`` ends it."""

    app: Any
    ssl: dict[str, Any] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str = "/") -> str:
        return f"{'https' if self.ssl else 'http'}://127.0.0.1:{self.port}{path}"

    def start(self) -> Served:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            access_log=False,
            lifespan="off",
            ws="none",
            **self.ssl,
        )
        self._server, self._thread = start_server(config)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            stop_server(self._server, self._thread)
        self._server = None
        self._thread = None

    def post(self, body: Any, path: str = "/", **kwargs: Any) -> httpx.Response:
        headers = {"content-type": "application/xml"}
        return httpx.post(self.url(path), content=body, headers=headers, timeout=10, **kwargs)


def count_rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
