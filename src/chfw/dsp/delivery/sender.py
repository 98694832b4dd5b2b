"""POST one signed alert to a Service User's endpoint and say what the answer means.

The boundary between httpx and chfw: httpx exceptions and HTTP statuses are
translated here, once, into chfw's two delivery errors —

- 2xx: delivered;
- 400: :class:`PermanentDeliveryError` — the receiver rejected this document
  (signature or schema); sending it again cannot help, so it is dead-lettered;
- 413: permanent as well — the body is too large for that endpoint and the
  same signed document will never get smaller; an operator must look;
- any other status (3xx are not followed, 401/403/404/429 and 5xx
  included), timeouts, refused connections, TLS failures:
  :class:`RetryableDeliveryError` — they are fixed on the far side or by an
  operator (certificates, endpoint URL) and the alert is retried with backoff
  until the horizon.

TLS verification is always on for https (the transport is always given an
``SSLContext``): the CA bundle is the user's ``tls_ca_bundle``, else
``settings.delivery_ca_bundle``, else the system trust store; a user with a
client certificate gets mutual TLS. One transport (one connection pool) is
kept per distinct TLS set-up.

The port is :class:`DeliveryTransport`: ``post(url, body, headers, timeout)``
returning the status, headers and body, failures raised as httpx's exception
types. Production uses :class:`~chfw.dsp.delivery.transport.KeepAliveTransport`;
tests plug in fakes of the same port, so the sender has one code path, the one
production runs. Why a port of our own rather than httpx's
(``AsyncBaseTransport``): an ``httpx.Request`` and ``httpx.Response`` per alert
cost more CPU than the exchange itself (``bench/bench_transports.py``).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx

from chfw.dsp.delivery.transport import KeepAliveTransport, RawResponse, refuse_proxy_settings
from chfw.dsp.store.outbox import ClaimedAlert
from chfw.exceptions import PermanentDeliveryError, RetryableDeliveryError
from chfw.shared.config import Settings
from chfw.shared.tls import TlsConfig

PERMANENT_STATUSES = frozenset({400, 413})
_SNIPPET = 200
USER_AGENT = "chfw-delivery/0.1"
_HEADERS = (
    (b"Content-Type", b"application/xml"),
    (b"Accept", b"*/*"),
    (b"User-Agent", USER_AGENT.encode()),
)  # the transport adds Host and Content-Length

Answer = RawResponse


class DeliveryTransport(Protocol):
    """What the sender needs of an HTTP client: one POST, and closing its connections."""

    async def post(
        self,
        url: str | httpx.URL,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        timeout: float,
    ) -> RawResponse: ...

    async def aclose(self) -> None: ...


def tls_for_alert(alert: ClaimedAlert, settings: Settings) -> TlsConfig:
    """The TLS set-up to deliver ``alert`` with: the user's CA bundle, else the DSP's, and
    the user's client certificate, if any."""
    return TlsConfig(
        ca_bundle=alert.tls_ca_bundle or settings.delivery_ca_bundle,
        client_cert=alert.tls_client_cert,
        client_key=alert.tls_client_key,
    )


TransportFactory = Callable[[TlsConfig], DeliveryTransport]


def default_transport_factory(tls: TlsConfig) -> DeliveryTransport:
    """A :class:`KeepAliveTransport` verifying with ``tls`` (and presenting its client cert)."""
    return KeepAliveTransport(ssl_context=tls.ssl_context())


class Transports:
    """One transport (one connection pool) per distinct TLS set-up, made on first use."""

    def __init__(self, factory: TransportFactory = default_transport_factory) -> None:
        if factory is default_transport_factory:
            refuse_proxy_settings(os.environ)  # at worker start, not at the first POST
        self._factory = factory
        self._transports: dict[TlsConfig, DeliveryTransport] = {}

    def get(self, tls: TlsConfig) -> DeliveryTransport:
        """The transport for ``tls``; ConfigError when its files cannot be used."""
        transport = self._transports.get(tls)
        if transport is None:
            transport = self._transports[tls] = self._factory(tls)
        return transport

    def __len__(self) -> int:
        return len(self._transports)

    async def aclose(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.aclose()


def _snippet(response: Answer) -> str:
    text = " ".join(response.text[: _SNIPPET * 2].split())
    return text[:_SNIPPET] + ("…" if len(text) > _SNIPPET else "")


def check_status(url: str, response: Answer) -> None:
    """Raise the delivery error a non-2xx answer means; return quietly on 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"{status} {response.reason_phrase}".strip()
    body = _snippet(response)
    detail = f"POST {url} answered {reason}" + (f": {body}" if body else "")
    if status in PERMANENT_STATUSES:
        raise PermanentDeliveryError(detail)
    if 300 <= status < 400:
        location = response.headers.get("location", "?")
        detail += f" (redirect to {location} not followed: fix the user's endpoint URL)"
    raise RetryableDeliveryError(detail)


def _url(url: str | httpx.URL) -> httpx.URL:
    if isinstance(url, httpx.URL):
        return url
    try:
        return _parsed(url)
    except httpx.InvalidURL as exc:
        raise RetryableDeliveryError(f"endpoint URL {url!r} is not valid: {exc}") from None


@functools.lru_cache(maxsize=4096)
def _parsed(url: str) -> httpx.URL:
    """Endpoint URLs are few and used over and over: parse each once."""
    return httpx.URL(url)


async def _post(
    transport: DeliveryTransport, url: str | httpx.URL, document: bytes, timeout: float
) -> Answer:
    """The POST itself; transport failures come out as RetryableDeliveryError."""
    try:
        _url(url)  # a URL that does not parse is the operator's to fix (parsed once per URL)
        return await transport.post(url, document, _HEADERS, timeout)
    except httpx.TimeoutException as exc:
        raise RetryableDeliveryError(f"POST {url} timed out: {exc}") from exc
    except httpx.ConnectError as exc:
        raise RetryableDeliveryError(f"POST {url}: {exc}") from exc
    except httpx.UnsupportedProtocol as exc:
        raise RetryableDeliveryError(f"endpoint URL {url!r} is not usable: {exc}") from exc
    except httpx.TransportError as exc:
        raise RetryableDeliveryError(f"POST {url} failed: {exc or type(exc).__name__}") from exc


async def post_document(
    transport: DeliveryTransport,
    url: str | httpx.URL,
    document: bytes,
    timeout: float = 10.0,
) -> Answer:
    """POST ``document`` as application/xml; any failure raised as a chfw delivery error."""
    response = await _post(transport, url, document, timeout)
    check_status(str(url), response)
    return response


Verdict = Literal["delivered", "retryable", "permanent"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one POST came to: verdict, the HTTP status if any, an operator message, time taken."""

    verdict: Verdict
    status_code: int | None
    error: str | None
    duration_ms: float


async def send(
    transport: DeliveryTransport,
    url: str | httpx.URL,
    document: bytes,
    timeout: float = 10.0,
) -> SendResult:
    """POST and classify; delivery failures are returned, not raised."""
    started = time.perf_counter()
    status: int | None = None
    try:
        response = await _post(transport, url, document, timeout)
        status = response.status_code
        check_status(str(url), response)
    except PermanentDeliveryError as exc:
        return SendResult("permanent", status, str(exc), _ms(started))
    except RetryableDeliveryError as exc:
        return SendResult("retryable", status, str(exc), _ms(started))
    return SendResult("delivered", status, None, _ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
