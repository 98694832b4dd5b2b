"""Test data for the outbox: Service Users inserted directly, alerts with recognisable bodies."""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import httpx
from sqlalchemy.engine import Engine

from chfw.core.domain.values import DeviceId, UserId
from chfw.dsp.delivery.reporting import WorkerStats
from chfw.dsp.delivery.sender import TransportFactory
from chfw.dsp.delivery.transport import RawResponse
from chfw.dsp.delivery.worker import Clock, Worker
from chfw.dsp.store import outbox
from chfw.dsp.store.schema import service_users
from chfw.shared.config import Settings


class MockTransport:
    """A fake :class:`~chfw.dsp.delivery.sender.DeliveryTransport`: each POST becomes an
    :class:`httpx.Request` for ``handler`` (as with :class:`httpx.MockTransport`), whose
    :class:`httpx.Response` comes back as the :class:`RawResponse` the real transport gives.
    The sender takes the same path with it as with the real one."""

    def __init__(
        self, handler: Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
    ) -> None:
        self.handler = handler
        self.closed = False

    async def post(
        self,
        url: str | httpx.URL,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        timeout: float,
    ) -> RawResponse:
        if self.closed:
            raise RuntimeError("the delivery transport is closed")
        request = httpx.Request(
            "POST",
            url,
            headers=list(headers),
            content=body,
            extensions={"timeout": dict.fromkeys(("connect", "read", "write"), timeout)},
        )
        response = self.handler(request)
        if inspect.isawaitable(response):
            response = await response
        return RawResponse(response.status_code, list(response.headers.raw), response.content)

    async def aclose(self) -> None:
        self.closed = True


SUPPLIER_A = UserId.parse("90-B3-D5-1F-30-01-00-0A")
SUPPLIER_B = UserId.parse("90-B3-D5-1F-30-01-00-0B")
HUB_1 = DeviceId.parse("00-DB-12-34-56-78-90-01")
HUB_2 = DeviceId.parse("00-DB-12-34-56-78-90-02")


def add_user(
    engine: Engine,
    user: UserId,
    endpoint_url: str | None,
    *,
    max_in_flight: int | None = 8,
    ca_bundle: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    allow_insecure_http: bool = True,
) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            service_users.insert().values(
                user_id=user.hex,
                name=f"Supplier {user}",
                roles="IS,GS",
                duis_version="5.1",
                endpoint_url=endpoint_url,
                tls_ca_bundle=ca_bundle,
                tls_client_cert=client_cert,
                tls_client_key=client_key,
                max_in_flight=max_in_flight,
                allow_insecure_http=allow_insecure_http,  # the test receivers are local http
                created_at=now,
                updated_at=now,
            )
        )


def document(response_id: str) -> bytes:
    """A body the receiver can tell apart (the real ones are signed DUIS Responses)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><sr:Response '
        'xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.1">'
        f"<sr:Header><sr:ResponseID>{response_id}</sr:ResponseID></sr:Header></sr:Response>"
    ).encode()


def alert(
    response_id: str, user: UserId = SUPPLIER_A, hub: DeviceId = HUB_1, code: str = "N64"
) -> outbox.NewAlert:
    return outbox.NewAlert(
        response_id=response_id,
        user_id=user,
        device_id=hub,
        alert_code=code,
        duis_version="5.1",
        firmware_version="0102ABCD",
        history_id=None,
        document=document(response_id),
    )


def enqueue(engine: Engine, alerts: Sequence[outbox.NewAlert], now: datetime) -> list[int]:
    """Write alerts; return their outbox ids in order."""
    with engine.begin() as conn:
        outbox.enqueue(conn, alerts, now)
        ids = {r.response_id: r.id for r in outbox.list_rows(conn, limit=len(alerts) + 1000)}
    return [ids[a.response_id] for a in alerts]


def drain(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    *,
    transport_factory: TransportFactory | None = None,
    seed: int = 7,
) -> WorkerStats:
    """One `chfw worker --once`: a fresh worker (state is only in the database) run until idle."""

    async def run() -> WorkerStats:
        async with Worker(
            engine,
            settings,
            clock=clock,
            rng=random.Random(seed),
            transport_factory=transport_factory,
        ) as worker:
            return await worker.run_until_idle()

    return asyncio.run(run())


def row(engine: Engine, key: int | str) -> outbox.OutboxDetail:
    with engine.connect() as conn:
        found = outbox.get(conn, key)
    assert found is not None, key
    return found
