"""A lean HTTP/1.1 keep-alive transport for httpx: the delivery hot path.

Why not httpx's default transport (httpcore)? Measured on the 2-core target
machine, it spends about 0.8 ms of CPU per POST (its pool rescans every
connection on every request, and each request retries an import of the
absent ``sniffio``), which caps one worker near 1,000 alerts/s. This transport
plugs into httpx's own port (:class:`httpx.AsyncBaseTransport`), so the worker
still speaks httpx and tests still swap in :class:`httpx.MockTransport`; it
does only what delivery needs, at a quarter of the cost:

- HTTP/1.1 requests with a complete body (a streamed body is read first),
  over keep-alive connections pooled per origin (scheme, host, port);
- TLS through the :class:`ssl.SSLContext` it is given (verification on);
- responses parsed by httptools (llhttp, the parser uvicorn uses);
- a request on a reused connection that the server had already closed is
  sent once more on a fresh connection (receivers dedupe on the ResponseID).

The worker itself calls :meth:`KeepAliveTransport.post`, the same exchange without
an ``httpx.Request``/``httpx.Response`` per alert (those objects cost about a third
of the worker's CPU); the httpx port serves everything else.

Not supported, because delivery does not need them: proxies, HTTP/2, upgrades.
Errors are raised as httpx's own exception types, so callers map one tree.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httptools
import httpx

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NO_BODY_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})


MAX_RESPONSE_BYTES = 64 * 1024


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
        self.status = 0
        self.headers = []
        self.body = []
        self.body_size = 0
        self.headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

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


def _timeouts(request: httpx.Request) -> dict[str, float | None]:
    found = request.extensions.get("timeout")
    return found if isinstance(found, dict) else {}


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over pooled keep-alive connections; TLS with the given context.

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

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the delivery transport is closed")
        key = self._origin(request.url, request)
        data = _serialise(request, await request.aread())
        answer = await self._send(key, data, _timeouts(request), request)
        return httpx.Response(
            answer.status_code,
            headers=answer.raw_headers,
            content=answer.content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def post(
        self,
        url: str | httpx.URL,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        timeout: float,
    ) -> RawResponse:
        """POST ``body`` to ``url``: the delivery hot path, without httpx's models.

        An ``httpx.Request`` and ``httpx.Response`` per alert cost more CPU than
        the exchange itself; here the request head is built once per URL and the
        answer comes back as a :class:`RawResponse`. Failures are raised as
        httpx's exceptions, as :meth:`handle_async_request` raises them.
        """
        if self._closed:
            raise RuntimeError("the delivery transport is closed")
        # Keyed by the URL as given: an endpoint URL string hashes at no cost, while an
        # httpx.URL hashes by rebuilding its text (~5 % of a worker's CPU in a profile).
        wanted = (url, tuple(headers))
        cached = self._heads.get(wanted)
        if cached is None:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
            cached = (self._origin(parsed, None), _head(parsed, headers))
            if len(self._heads) >= 4096:
                self._heads.clear()
            self._heads[wanted] = cached
        key, head = cached
        data = b"%s%d\r\n\r\n%s" % (head, len(body), body)
        limits: dict[str, float | None] = {"connect": timeout, "read": timeout, "write": timeout}
        return await self._send(key, data, limits, None)

    def _origin(self, url: httpx.URL, request: httpx.Request | None) -> tuple[str, str, int]:
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(
                f"URL scheme {scheme!r} is not supported (use https://; http:// for local tests)",
                request=request,
            )
        return (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])

    async def _send(
        self,
        key: tuple[str, str, int],
        data: bytes,
        timeouts: dict[str, float | None],
        request: httpx.Request | None,
    ) -> RawResponse:
        connection = self._take(key)
        if connection is not None:
            try:
                return await self._exchange(key, connection, request, data, timeouts)
            except _Stale:
                pass  # the server had closed it while idle: once more on a fresh connection
        connection = await self._connect(key, request, timeouts.get("connect"))
        try:
            return await self._exchange(key, connection, request, data, timeouts)
        except _Stale:
            raise httpx.RemoteProtocolError(
                "the endpoint closed the connection without answering", request=request
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

    async def _connect(
        self, key: tuple[str, str, int], request: httpx.Request | None, timeout: float | None
    ) -> _Connection:
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
                f"connecting to {host}:{port} took longer than {timeout} s", request=request
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise httpx.ConnectError(
                f"TLS: the certificate of {host}:{port} is not trusted ({exc.verify_message})",
                request=request,
            ) from None
        except ssl.SSLError as exc:
            raise httpx.ConnectError(
                f"TLS handshake with {host}:{port} failed ({exc.reason or exc})", request=request
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(
                f"cannot connect to {host}:{port} ({exc.strerror or exc})", request=request
            ) from None
        self._open.add(connection)
        return connection

    async def _exchange(
        self,
        key: tuple[str, str, int],
        connection: _Connection,
        request: httpx.Request | None,
        data: bytes,
        timeouts: dict[str, float | None],
    ) -> RawResponse:
        read_timeout = timeouts.get("read")
        try:
            async with asyncio.timeout(read_timeout):
                await connection.exchange(data, timeouts.get("write"))
        except TimeoutError:
            self._drop(connection)
            raise httpx.ReadTimeout(f"no answer within {read_timeout} s", request=request) from None
        except _Stale:
            self._drop(connection)
            raise
        except httpx.TransportError as exc:
            self._drop(connection)
            if request is not None:
                exc.request = request
            raise
        except BaseException:
            self._drop(connection)  # cancelled mid-request: the stream is out of step
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


def _serialise(request: httpx.Request, body: bytes) -> bytes:
    """The request line, headers (with an exact Content-Length) and body, as one buffer."""
    method = request.method.encode("ascii")
    parts = [method, b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower in (b"content-length", b"transfer-encoding"):
            continue
        parts += [name, b": ", value, b"\r\n"]
    if body or method not in _NO_BODY_METHODS:
        parts.append(b"Content-Length: %d\r\n" % len(body))
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)
