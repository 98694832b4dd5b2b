"""How chfw's HTTP servers (the intake, the receiver) run under uvicorn: TLS and client limits.

uvicorn bounds only idle keep-alive connections; a client that opens a
connection and then trickles its request line, headers or body a byte at a
time (slowloris) would hold a connection, and its buffers, for as long as it
likes. :class:`GuardedHttpProtocol` -- uvicorn's httptools protocol with
two checks added -- gives every request a deadline to arrive in full
(headers *and* body; the time the application takes to answer is not
counted) and caps the size of its headers. A late request is answered 408
and its connection closed; oversized headers 431. The connection limit makes
uvicorn answer 503 rather than accept without bound.

Why a subclass of uvicorn's private protocol: uvicorn's public settings cannot
do either check. ``timeout_keep_alive`` only closes a connection idle *between*
requests, nothing bounds the time a request takes to arrive, and
``h11_max_incomplete_event_size`` caps headers for the h11 protocol only (chfw
serves with httptools, the faster of the two parsers); ASGI middleware runs only
once the headers are complete, too late for both. So
:class:`GuardedHttpProtocol` is tied to uvicorn's internals and is tested
against exactly the uvicorn releases in :data:`TESTED_UVICORN_VERSIONS` (the
one pinned in ``constraints.txt``); ``tests/shared/test_serving.py::TestUvicornVersion``
fails when another is installed or pinned, a server started on another warns
(:func:`untested_uvicorn`), and the slow-client tests
(``tests/dsp/intake/test_hostile.py::TestSlowClients``, ``tests/shared/test_serving.py``,
``tests/supplier/test_hostile_http.py``) are what to run before adding one.

:func:`tls_options` turns certificate paths into uvicorn's ``ssl_*`` options,
with mutual TLS (``ssl.CERT_REQUIRED``) when a client CA is given.

Forwarded headers (``X-Forwarded-For``/``-Proto``) are believed only from
``trusted_proxies`` (:mod:`chfw.shared.forwarded`); uvicorn's own handling, which
trusts 127.0.0.1 by default, is off.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # private: see above

from chfw.core.clock import utc_now
from chfw.exceptions import ConfigError
from chfw.shared.certificates import check_server_certificate
from chfw.shared.config import Settings
from chfw.shared.forwarded import ForwardedHeaders, TrustedProxies
from chfw.shared.handshakes import HandshakeFailures
from chfw.shared.longrunning import start_long_running

TESTED_UVICORN_VERSIONS = frozenset({"0.54.0"})
"""The uvicorn releases :class:`GuardedHttpProtocol` is tested against. It reads
``HttpToolsProtocol``'s ``transport``, ``loop``, ``flow.read_paused`` and ``cycle``
(``response_started``, ``response_complete``) and extends ``connection_made``,
``connection_lost``, ``data_received`` and the parser callbacks ``on_message_begin``,
``on_headers_complete`` and ``on_message_complete``."""


@dataclass(frozen=True)
class ClientLimits:
    """What one client may cost a server: time to send a request, header bytes, connections."""

    request_seconds: float = 30.0  # from connection (or the request's first byte) to its last
    keep_alive_seconds: float = 15.0  # an idle kept-alive connection is closed after this
    max_header_bytes: int = 64 * 1024
    max_connections: int = 2048  # beyond: 503 Service Unavailable

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientLimits:
        return cls(
            request_seconds=settings.server_request_timeout_seconds,
            keep_alive_seconds=settings.server_keep_alive_seconds,
            max_header_bytes=settings.server_max_header_bytes,
            max_connections=settings.server_max_connections,
        )


def _plain_response(status: bytes, text: str) -> bytes:
    body = text.encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a per-request deadline and a header size cap.

    Tested against uvicorn :data:`TESTED_UVICORN_VERSIONS` only (it reads private state).
    """

    limits = ClientLimits()  # replaced per server by :func:`guarded_protocol`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_headers = True
        self._header_bytes = 0
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Counted before the parser runs: headers that arrive in one read complete (and
        # stop the count) inside it, so counting afterwards let any one-read block through.
        if self._in_headers and not self.transport.is_closing():
            end = data.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else end + 4
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(
                    b"431 Request Header Fields Too Large",
                    f"request headers exceed {self.limits.max_header_bytes} bytes",
                )
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        self._arm()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_headers = True  # what comes next on this connection is a request's headers
        self._header_bytes = 0
        super().on_message_complete()

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.limits.request_seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # the server is the slow one (busy on an earlier request)
            self._arm()
            return
        self._refuse(
            b"408 Request Timeout",
            f"the request did not arrive within {self.limits.request_seconds:g} seconds",
        )

    def _refuse(self, status: bytes, text: str) -> None:
        """Answer and close, unless the application has already started its own answer."""
        self._disarm()
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(_plain_response(status, text))
        self.transport.close()


def guarded_protocol(limits: ClientLimits) -> type[GuardedHttpProtocol]:
    """A :class:`GuardedHttpProtocol` subclass bound to ``limits`` (one per server)."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})


def tls_options(cert: Path | None, key: Path | None, client_ca: Path | None) -> dict[str, Any]:
    """uvicorn's ssl_* options, after checking the files can be used.

    With ``client_ca``, clients must present a certificate issued by it
    (mutual TLS): a client without one fails the handshake. The certificate must
    be valid now and ``key`` its key (:func:`check_server_certificate`).
    """
    if cert is None:
        if key is not None or client_ca is not None:
            raise ConfigError("--tls-key and --tls-client-ca need --tls-cert")
        return {}
    check_server_certificate(cert, key, utc_now())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot use TLS certificate {cert} (key {key or 'in the same file'}): {exc}"
        ) from None
    options: dict[str, Any] = {"ssl_certfile": str(cert)}
    if key is not None:
        options["ssl_keyfile"] = str(key)
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot use client CA file {client_ca}: {exc}") from None
        options["ssl_ca_certs"] = str(client_ca)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def untested_uvicorn() -> str | None:
    """A one-line warning when the installed uvicorn is not one GuardedHttpProtocol is tested
    against (installed outside ``constraints.txt``), else None."""
    if uvicorn.__version__ in TESTED_UVICORN_VERSIONS:
        return None
    return (
        f"uvicorn {uvicorn.__version__} is installed, but chfw's slow-client protection "
        f"(chfw.shared.serving.GuardedHttpProtocol: 408, 431) is tested against uvicorn "
        f"{', '.join(sorted(TESTED_UVICORN_VERSIONS))} only: install that release "
        "(pip install -c constraints.txt)"
    )


def server_config(
    app: Any,
    host: str,
    port: int,
    limits: ClientLimits,
    tls: dict[str, Any] | None = None,
    proxies: TrustedProxies | None = None,
    **options: Any,
) -> uvicorn.Config:
    """The uvicorn configuration chfw serves with: guarded protocol, limits, TLS, quiet logs,
    forwarded headers from ``proxies`` only."""
    warning = untested_uvicorn()
    if warning:
        warnings.warn(warning, RuntimeWarning, stacklevel=2)
    # log_config None: uvicorn's records go to the root logger, rendered as chfw's own lines
    # (JSON for a service: chfw.shared.logs), not through uvicorn's plain-text handlers.
    defaults: dict[str, Any] = {"log_level": "warning", "access_log": False, "log_config": None}
    defaults.update(options)
    return uvicorn.Config(
        ForwardedHeaders(app, proxies) if proxies else app,
        proxy_headers=False,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        timeout_keep_alive=max(1, round(limits.keep_alive_seconds)),
        limit_concurrency=limits.max_connections,
        **(tls or {}),
        **defaults,
    )


def bind(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` now, so that nothing is announced before the
    address is known to work; a port in use is one ConfigError line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use (another receiver or program "
                "listens there): stop it, or choose another --port"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"not allowed to listen on {host}:{port} (ports below 1024 need privileges): "
                "choose another --port"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    app: Any,
    host: str,
    port: int,
    limits: ClientLimits,
    tls: dict[str, Any] | None = None,
    proxies: TrustedProxies | None = None,
    *,
    sock: socket.socket | None = None,
    handshakes: HandshakeFailures | None = None,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (uvicorn finishes the requests in progress).

    ``sock``: a socket from :func:`bind` (else uvicorn binds ``host``:``port``);
    ``handshakes``: told of every failed TLS handshake.
    """
    start_long_running()
    config = server_config(app, host, port, limits, tls, proxies)
    if tls and handshakes is not None:
        config.load()  # builds config.ssl, which uvicorn then serves with
        if config.ssl is not None:
            handshakes.install(config.ssl)
    uvicorn.Server(config).run(sockets=None if sock is None else [sock])
