"""A lean HTTP/1.1 keep-alive client: the delivery worker's only way to POST an alert.

Why not httpx's standard transport (httpcore) or aiohttp? Measured with the same
workload in one run (``bench/bench_transports.py``, docs/performance.md, "issue 21:
HTTP client transports"): httpx's standard transport spends ~30× this transport's CPU
per POST (its pool rescans every connection several times per request, and anyio's TLS
stream is asked for its socket on each), aiohttp ~2×. This client does only what
delivery needs:

- ``POST`` with a complete body, as HTTP/1.1, over keep-alive connections pooled per
  origin (scheme, host, port), the request head built once per URL;
- TLS through the :class:`ssl.SSLContext` it is given (verification on);
- responses parsed by httptools (llhttp, the parser uvicorn uses), at most
  :data:`MAX_HEADER_BYTES` of headers and :data:`MAX_RESPONSE_BYTES` of body kept;
- a connection whose stream is out of step (bytes nobody asked for, a second answer
  after the first, an answer cut short) is closed, never reused;
- a request on a reused connection that the server had already closed is sent once
  more on a fresh connection (receivers dedupe on the ResponseID).

Not supported, because delivery does not need them: proxies (``HTTPS_PROXY`` is refused
at worker start, :func:`refuse_proxy_settings`), HTTP/2, upgrades, redirects (a 3xx is
an answer like any other). Errors are raised as httpx's exception types, so the sender
maps one tree.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httptools
import httpx

from chfw.exceptions import ConfigError

_DEFAULT_PORTS = {"http": 80, "https": 443}

MAX_RESPONSE_BYTES = 64 * 1024
"""Body bytes kept of any answer (a DUIS endpoint answers 204, or 400 with a short reason)."""
MAX_HEADER_BYTES = 64 * 1024
"""Status lines and headers of one answer (interim 1xx answers included), in all."""

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def refuse_proxy_settings(environ: Mapping[str, str]) -> None:
    """ConfigError when the environment asks for a proxy: this client always connects directly,
    and silently ignoring a proxy the operator set would send alerts another way than intended."""
    named = [name for name in PROXY_VARIABLES if environ.get(name, "").strip()]
    if named:
        raise ConfigError(
            f"{named[0]} is set, but the delivery worker does not use proxies: it connects to "
            "each endpoint directly (unset " + " and ".join(named) + " for `chfw worker`)"
        )


@dataclass(frozen=True, slots=True)
class RawResponse:
    """An answer as delivery needs it: status, headers as received, body (at most
    :data:`MAX_RESPONSE_BYTES`). The few attributes an error message needs are
    named as on :class:`httpx.Response`."""

    status_code: int
    raw_headers: list[tuple[bytes, bytes]]
    content: bytes

    @property
    def reason_phrase(self) -> str:
        return httpx.codes.get_reason_phrase(self.status_code)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def headers(self) -> httpx.Headers:
        return httpx.Headers(self.raw_headers)


class _Stale(Exception):
    """The server closed the connection before answering (a reused idle connection)."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.answered = False  # any byte of the current response received
        self.headers_done = False
        self.complete = False  # the final answer to the current request has been parsed
        self.head_bytes = 0  # bytes received for the current request before its headers ended
        self.header_bytes = 0  # the same, as parsed: header names and values
        self.keep_alive = True
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_size = 0
        self.lost_reason: BaseException | None = None
        self._drain: asyncio.Future[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            # Bytes nobody asked for: the stream is out of step; never reuse it.
            self.close()
            return
        self.answered = True
        if not self.headers_done:
            # Counted before the parser runs: httptools buffers a header until it ends, so a
            # header trickled over many reads would otherwise grow without bound inside it.
            end = data.find(b"\r\n\r\n")
            self.head_bytes += len(data) if end < 0 else end + 4
            if self.head_bytes > MAX_HEADER_BYTES:
                self._fail(_headers_too_large())
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the endpoint asked to upgrade the connection"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost_reason = exc
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and not self._framed():
            # A body delimited by the end of the connection (no length, not chunked).
            self.keep_alive = False
            waiter.set_result(None)
        elif not self.answered:
            waiter.set_exception(_Stale())
        elif isinstance(exc, ssl.SSLError):
            waiter.set_exception(httpx.ReadError(f"TLS error while reading the answer: {exc}"))
        else:
            waiter.set_exception(
                httpx.RemoteProtocolError("the endpoint closed the connection mid-answer")
            )

    def _framed(self) -> bool:
        """Whether the answer said how long its body is (so a close before the end is an error)."""
        return any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.complete:
            # A second answer in the same read as the first: the stream is out of step (a
            # confused or hostile endpoint). Keep the first answer, never reuse the connection.
            self.close()
            raise httptools.HttpParserCallbackError("an answer after the answer")
        self.status = 0
        self.headers = []
        self.body = []
        self.body_size = 0
        self.headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        # Also counted as parsed: an interim 1xx answer and the final one's head can share a
        # read, whose bytes after the interim's end the count above does not see.
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > MAX_HEADER_BYTES:
            self._fail(_headers_too_large())
            raise httptools.HttpParserCallbackError("headers too large")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        # A DUIS endpoint answers 204, or 400 with a short reason: keep at most
        # MAX_RESPONSE_BYTES of any answer, so a hostile endpoint cannot fill our memory,
        # and never reuse a connection whose answer was cut.
        room = MAX_RESPONSE_BYTES - self.body_size
        if room > 0:
            self.body.append(body[:room])
        self.body_size += len(body)
        if self.body_size > MAX_RESPONSE_BYTES:
            self.keep_alive = False

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:
            self.headers_done = False  # an interim answer (100 Continue): the real one follows
            return
        self.complete = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # ours
    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close the socket now: a TLS close_notify exchange needs a loop that may be ending."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def exchange(self, data: bytes, write_timeout: float | None) -> None:
        """Send one request and wait (without a deadline: the caller sets it) for the answer."""
        assert self.transport is not None
        if self.closed or self.transport.is_closing():
            raise _Stale()  # closed by the server before we could send
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.answered = False
        self.headers_done = False
        self.complete = False
        self.head_bytes = self.header_bytes = 0
        self.transport.write(data)
        if self._drain is not None and not self._drain.done():
            try:
                async with asyncio.timeout(write_timeout):
                    await self._drain
            except TimeoutError:
                self.close()
                raise httpx.WriteTimeout(
                    f"sending the request took longer than {write_timeout} s"
                ) from None
        await self.waiter


def _headers_too_large() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(
        f"the endpoint's answer headers exceed {MAX_HEADER_BYTES} bytes"
    )


class KeepAliveTransport:
    """HTTP/1.1 POSTs over pooled keep-alive connections; TLS with the given context.

    ``ssl_context`` None means the system trust store (``ssl.create_default_context``).
    Concurrency is bounded by the caller (the worker's per-endpoint limit);
    this pool keeps up to ``max_idle_per_origin`` idle connections per
    origin, each for at most ``idle_expiry`` seconds.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle_per_origin: int = 128,
        idle_expiry: float = 30.0,
    ) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_idle_per_origin
        self._idle_expiry = idle_expiry
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._closed = False
        # (URL, headers) -> (origin, request head up to the Content-Length value)
        self._heads: dict[
            tuple[str | httpx.URL, tuple[tuple[bytes, bytes], ...]],
            tuple[tuple[str, str, int], bytes],
        ] = {}

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def post(
        self,
        url: str | httpx.URL,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        timeout: float,
    ) -> RawResponse:
        """POST ``body`` to ``url`` with ``headers`` (Host and Content-Length are added).

        ``timeout`` bounds connecting, sending and waiting for the whole answer, each.
        Failures are raised as httpx's exceptions (``ConnectError``, ``ReadTimeout``,
        ``RemoteProtocolError``, ``UnsupportedProtocol``…).
        """
        if self._closed:
            raise RuntimeError("the delivery transport is closed")
        # Keyed by the URL as given: an endpoint URL string hashes at no cost, while an
        # httpx.URL hashes by rebuilding its text (~5 % of a worker's CPU in a profile).
        wanted = (url, tuple(headers))
        cached = self._heads.get(wanted)
        if cached is None:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
            cached = (_origin(parsed), _head(parsed, headers))
            if len(self._heads) >= 4096:
                self._heads.clear()
            self._heads[wanted] = cached
        key, head = cached
        data = b"%s%d\r\n\r\n%s" % (head, len(body), body)
        connection = self._take(key)
        if connection is not None:
            try:
                return await self._exchange(key, connection, data, timeout)
            except _Stale:
                pass  # the server had closed it while idle: once more on a fresh connection
        connection = await self._connect(key, timeout)
        try:
            return await self._exchange(key, connection, data, timeout)
        except _Stale:
            raise httpx.RemoteProtocolError(
                "the endpoint closed the connection without answering"
            ) from None

    def _take(self, key: tuple[str, str, int]) -> _Connection | None:
        pool = self._idle.get(key)
        now = time.monotonic()
        while pool:
            connection = pool.pop()
            if not connection.closed and now - connection.idle_since < self._idle_expiry:
                return connection
            self._drop(connection)
        return None

    def _drop(self, connection: _Connection) -> None:
        # Dropped connections are broken, stale or over the idle limit: no graceful TLS close.
        connection.abort()
        self._open.discard(connection)

    def _put(self, key: tuple[str, str, int], connection: _Connection) -> None:
        pool = self._idle.setdefault(key, [])
        if connection.closed or not connection.keep_alive or len(pool) >= self._max_idle:
            self._drop(connection)
            return
        connection.idle_since = time.monotonic()
        pool.append(connection)

    async def _connect(self, key: tuple[str, str, int], timeout: float) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = self._tls() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    _Connection,
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"connecting to {host}:{port} took longer than {timeout} s"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise httpx.ConnectError(
                f"TLS: the certificate of {host}:{port} is not trusted ({exc.verify_message})"
            ) from None
        except ssl.SSLError as exc:
            raise httpx.ConnectError(
                f"TLS handshake with {host}:{port} failed ({exc.reason or exc})"
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(
                f"cannot connect to {host}:{port} ({exc.strerror or exc})"
            ) from None
        self._open.add(connection)
        return connection

    async def _exchange(
        self, key: tuple[str, str, int], connection: _Connection, data: bytes, timeout: float
    ) -> RawResponse:
        try:
            async with asyncio.timeout(timeout):
                await connection.exchange(data, timeout)
        except TimeoutError:
            self._drop(connection)
            raise httpx.ReadTimeout(f"no answer within {timeout} s") from None
        except BaseException:
            # _Stale, a protocol error, or cancelled mid-request: the stream is out of step.
            self._drop(connection)
            raise
        response = RawResponse(connection.status, connection.headers, b"".join(connection.body))
        if connection.closed or not connection.keep_alive:
            self._drop(connection)
        else:
            self._put(key, connection)
        return response

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.abort()
        self._open.clear()
        self._idle.clear()
        # Let the event loop run connection_lost for each closed transport.
        await asyncio.sleep(0)


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    scheme = url.scheme
    if scheme not in _DEFAULT_PORTS:
        raise httpx.UnsupportedProtocol(
            f"URL scheme {scheme!r} is not supported (use https://; http:// for local tests)"
        )
    return (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])


def _head(url: httpx.URL, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A POST's request line and headers, ending where the Content-Length value goes."""
    host = url.raw_host
    if b":" in host:  # an IPv6 literal
        host = b"[" + host + b"]"
    if url.port is not None:
        host += b":%d" % url.port
    parts = [b"POST ", url.raw_path, b" HTTP/1.1\r\nHost: ", host, b"\r\n"]
    for name, value in headers:
        if name.lower() in (b"host", b"content-length", b"transfer-encoding"):
            continue
        parts += [name, b": ", value, b"\r\n"]
    parts.append(b"Content-Length: ")
    return b"".join(parts)
