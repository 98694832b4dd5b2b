"""The keep-alive transport against real servers on 127.0.0.1: reuse, failures, TLS, and
endpoints that misbehave (oversized headers, a second answer in the same read)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import httpx
import pytest

from chfw.dsp.delivery.sender import default_transport_factory
from chfw.dsp.delivery.transport import (
    MAX_HEADER_BYTES,
    MAX_RESPONSE_BYTES,
    KeepAliveTransport,
    RawResponse,
    _head,
)
from chfw.shared.tls import TlsConfig
from tests.dsp.delivery.conftest import Pki
from tests.dsp.delivery.receiver import Answer, ScriptedReceiver, free_port

XML = [(b"content-type", b"application/xml")]

Post = Callable[[str, bytes], Awaitable[RawResponse]]


def run(
    scenario: Callable[[Post], Awaitable[None]],
    *,
    tls: TlsConfig | None = None,
    timeout: float = 5.0,
) -> None:
    """``scenario`` posting through one transport made as the worker makes it."""

    async def main() -> None:
        transport = default_transport_factory(tls or TlsConfig())

        async def post(url: str, body: bytes) -> RawResponse:
            return await transport.post(url, body, XML, timeout)

        try:
            await scenario(post)
        finally:
            await transport.aclose()

    asyncio.run(main())


def post_once(url: str, body: bytes = b"<x/>", **kwargs: object) -> RawResponse:
    answers: list[RawResponse] = []

    async def scenario(post: Post) -> None:
        answers.append(await post(url, body))

    run(scenario, **kwargs)  # type: ignore[arg-type]
    return answers[0]


class TestKeepAlive:
    """Requests reuse one connection; a connection the server dropped is replaced once."""

    def test_sequential_posts_share_a_connection_and_send_exact_headers(
        self, receiver: ScriptedReceiver
    ) -> None:
        async def scenario(post: Post) -> None:
            for n in range(5):
                assert (await post(receiver.url(), b"<n>%d</n>" % n)).status_code == 204

        run(scenario)
        assert [r.body for r in receiver.received] == [b"<n>%d</n>" % n for n in range(5)]
        assert len({r.client_port for r in receiver.received}) == 1
        headers = receiver.received[0].headers
        assert headers["content-length"] == "8"
        assert headers["content-type"] == "application/xml"
        assert headers["host"] == receiver.url().split("/")[2]

    def test_server_restart_between_requests(self, receiver: ScriptedReceiver) -> None:
        async def scenario(post: Post) -> None:
            assert (await post(receiver.url(), b"<a/>")).status_code == 204
            await asyncio.to_thread(receiver.stop)
            await asyncio.to_thread(receiver.start)
            # The pooled connection is dead; the request goes out again on a new one.
            assert (await post(receiver.url(), b"<b/>")).status_code == 204

        run(scenario)
        assert [r.body for r in receiver.received] == [b"<a/>", b"<b/>"]
        assert receiver.received[0].client_port != receiver.received[1].client_port

    def test_host_header(self) -> None:
        assert _head(httpx.URL("http://[::1]:8443/duis"), []).startswith(
            b"POST /duis HTTP/1.1\r\nHost: [::1]:8443\r\n"
        )
        assert b"Host: example.org\r\n" in _head(httpx.URL("https://example.org/"), [])
        assert b"Host: x" not in _head(httpx.URL("https://example.org/"), [(b"Host", b"x")])


class TestAnswers:
    """Status, headers and body come back as the server sent them."""

    def test_error_answer_with_body(self, receiver: ScriptedReceiver) -> None:
        receiver.script(Answer(400, b"schema validation failed"))
        answer = post_once(receiver.url())
        assert (answer.status_code, answer.reason_phrase) == (400, "Bad Request")
        assert answer.text == "schema validation failed"
        assert answer.headers["content-type"] == "text/plain"

    def test_huge_answer_is_cut_and_connection_not_reused(self, receiver: ScriptedReceiver) -> None:
        """A hostile endpoint cannot make us hold more than MAX_RESPONSE_BYTES of its answer."""
        receiver.script(Answer(400, b"x" * (MAX_RESPONSE_BYTES * 4)), 204)

        async def scenario(post: Post) -> None:
            first = await post(receiver.url(), b"<x/>")
            assert first.status_code == 400
            assert len(first.content) == MAX_RESPONSE_BYTES
            assert (await post(receiver.url(), b"<x/>")).status_code == 204

        run(scenario)
        assert receiver.received[0].client_port != receiver.received[1].client_port

    def test_read_timeout_then_recovery(self, receiver: ScriptedReceiver) -> None:
        receiver.script(Answer(204, delay=1.0))

        async def scenario(post: Post) -> None:
            with pytest.raises(httpx.ReadTimeout, match="no answer within"):
                await post(receiver.url(), b"<slow/>")
            assert (await post(receiver.url(), b"<next/>")).status_code == 204

        run(scenario, timeout=0.2)


class TestFailures:
    """Refused connections and broken servers raise httpx's own errors."""

    def test_nothing_listening(self) -> None:
        with pytest.raises(httpx.ConnectError, match=r"cannot connect to 127\.0\.0\.1"):
            post_once(f"http://127.0.0.1:{free_port()}/duis")

    def test_unsupported_scheme(self) -> None:
        with pytest.raises(httpx.UnsupportedProtocol, match="ftp"):
            post_once("ftp://127.0.0.1/duis")

    @pytest.mark.parametrize(
        ("reply", "error", "words"),
        [
            (b"", httpx.RemoteProtocolError, "without answering"),
            (b"NOT HTTP AT ALL\r\n\r\n", httpx.RemoteProtocolError, "malformed HTTP response"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
                httpx.RemoteProtocolError,
                "mid-answer",
            ),
        ],
    )
    def test_broken_servers(self, reply: bytes, error: type[Exception], words: str) -> None:
        with Endpoint([reply], close=True) as endpoint, pytest.raises(error, match=words):
            post_once(endpoint.url)

    def test_body_delimited_by_close(self) -> None:
        reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
        with Endpoint([reply], close=True) as endpoint:
            answer = post_once(endpoint.url)
        assert (answer.status_code, answer.text) == (200, "all of it")

    def test_closed_transport_refuses(self) -> None:
        async def main() -> None:
            transport = KeepAliveTransport()
            await transport.aclose()
            with pytest.raises(RuntimeError, match="closed"):
                await transport.post("http://127.0.0.1/", b"", [], 1.0)

        asyncio.run(main())


class Endpoint:
    """A misbehaving endpoint on 127.0.0.1: answers each request (one per connection unless
    kept alive) with the next scripted bytes, each in a single write, and counts connections."""

    def __init__(self, replies: list[bytes], *, close: bool = False) -> None:
        self.replies = list(replies)
        self.close = close
        self.connections = 0
        self.requests: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.requests.append(await reader.readexactly(length))
                writer.write(self.replies.pop(0))
                await writer.drain()
                if self.close:
                    return
            await reader.read()  # until the client closes
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    def __enter__(self) -> Endpoint:
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/duis"
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        return self

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.sleep(0.01)  # let the closed transports finish closing
        await self._server.wait_closed()

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def two_posts(url: str) -> list[RawResponse | BaseException]:
    """Two POSTs in a row through one transport; an error is returned in the answer's place."""
    answers: list[RawResponse | BaseException] = []

    async def scenario(post: Post) -> None:
        for body in (b"<first/>", b"<second/>"):
            try:
                answers.append(await post(url, body))
            except httpx.TransportError as exc:
                answers.append(exc)

    run(scenario, timeout=2.0)
    return answers


class TestFraming:
    """A connection whose stream is out of step is closed, never reused for the next alert."""

    def test_a_second_answer_in_the_same_read_closes_the_connection(self) -> None:
        doubled = NO_CONTENT + b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad"
        with Endpoint([doubled, NO_CONTENT]) as endpoint:
            first, second = two_posts(endpoint.url)
        # The first answer is the one kept (the second did not overwrite it) ...
        assert isinstance(first, RawResponse)
        assert (first.status_code, first.content) == (204, b"")
        # ... and the next POST went out on a new connection.
        assert isinstance(second, RawResponse)
        assert second.status_code == 204
        assert endpoint.connections == 2
        assert endpoint.requests == [b"<first/>", b"<second/>"]

    def test_bytes_after_the_answer_close_the_connection(self) -> None:
        with Endpoint([NO_CONTENT + b"garbage", NO_CONTENT]) as endpoint:
            first, second = two_posts(endpoint.url)
        assert isinstance(first, RawResponse)
        assert isinstance(second, RawResponse)
        assert (first.status_code, second.status_code) == (204, 204)
        assert endpoint.connections == 2

    def test_interim_answer_then_the_real_one(self) -> None:
        interim = b"HTTP/1.1 100 Continue\r\n\r\n" + NO_CONTENT
        with Endpoint([interim, NO_CONTENT]) as endpoint:
            first, second = two_posts(endpoint.url)
        assert isinstance(first, RawResponse)
        assert isinstance(second, RawResponse)
        assert (first.status_code, second.status_code) == (204, 204)
        assert endpoint.connections == 1  # a well-framed exchange keeps its connection


def with_headers(total: int, size: int = 1000) -> bytes:
    """A 204 answer whose header lines add up to about ``total`` bytes, ``size`` each."""
    count, rest = divmod(total, size)
    lines = [b"X-Pad-%d: %s\r\n" % (n, b"p" * (size - 14)) for n in range(count)]
    return b"HTTP/1.1 204 No Content\r\n" + b"".join(lines) + b"X-End: " + b"e" * rest + b"\r\n\r\n"


class TestHeaderLimit:
    """At most MAX_HEADER_BYTES of status lines and headers per answer, in all."""

    def test_headers_under_the_limit_are_read(self) -> None:
        with Endpoint([with_headers(MAX_HEADER_BYTES - 2000)]) as endpoint:
            answer = post_once(endpoint.url)
        assert answer.status_code == 204
        assert len(answer.raw_headers) > 50

    @pytest.mark.parametrize(
        "reply",
        [
            pytest.param(with_headers(MAX_HEADER_BYTES + 1000), id="many-headers"),
            pytest.param(with_headers(MAX_HEADER_BYTES * 3, size=MAX_HEADER_BYTES), id="one-huge"),
            pytest.param(
                b"HTTP/1.1 100 Continue\r\n\r\n" + with_headers(MAX_HEADER_BYTES + 1000),
                id="after-an-interim-answer-in-the-same-read",
            ),
        ],
    )
    def test_oversized_headers_fail_and_close_the_connection(self, reply: bytes) -> None:
        with Endpoint([reply, NO_CONTENT]) as endpoint:
            first, second = two_posts(endpoint.url)
        assert isinstance(first, httpx.RemoteProtocolError)
        assert f"headers exceed {MAX_HEADER_BYTES} bytes" in str(first)
        assert isinstance(second, RawResponse)
        assert second.status_code == 204
        assert endpoint.connections == 2

    def test_a_trickled_header_is_cut_off_at_the_limit(self) -> None:
        """A header sent a kilobyte at a time never completes: it is counted as it arrives."""
        received = 0

        async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal received
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
            try:
                for _ in range(4 * MAX_HEADER_BYTES // 1024):
                    writer.write(b"a" * 1024)
                    await writer.drain()
                    received += 1024
                    await asyncio.sleep(0.001)
            except ConnectionError:
                pass
            finally:
                writer.close()

        async def main() -> None:
            server = await asyncio.start_server(trickle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            transport = KeepAliveTransport()
            try:
                with pytest.raises(httpx.RemoteProtocolError, match="headers exceed"):
                    await transport.post(f"http://127.0.0.1:{port}/", b"<x/>", [], 10.0)
            finally:
                await transport.aclose()
                server.close()
                await server.wait_closed()

        asyncio.run(main())
        assert received < 4 * MAX_HEADER_BYTES  # the client hung up before the end


class TestTls:
    """https is always verified; the user's CA bundle and client certificate are used."""

    def test_mutual_tls(self, tls_receiver: ScriptedReceiver, pki: Pki) -> None:
        tls = TlsConfig(str(pki.ca), str(pki.client_cert), str(pki.client_key))

        async def scenario(post: Post) -> None:
            for _ in range(2):
                assert (await post(tls_receiver.url(), b"<x/>")).status_code == 204

        run(scenario, tls=tls)
        assert len(tls_receiver.received) == 2
        assert tls_receiver.url().startswith("https://localhost:")

    def test_untrusted_server_certificate(self, tls_receiver: ScriptedReceiver, pki: Pki) -> None:
        tls = TlsConfig(str(pki.other_ca), str(pki.client_cert), str(pki.client_key))
        with pytest.raises(httpx.ConnectError, match="not trusted"):
            post_once(tls_receiver.url(), tls=tls)
        assert tls_receiver.received == []

    def test_system_trust_store_does_not_know_a_private_ca(
        self, tls_receiver: ScriptedReceiver
    ) -> None:
        with pytest.raises(httpx.ConnectError, match="not trusted"):
            post_once(tls_receiver.url())

    def test_missing_client_certificate_is_refused(
        self, tls_receiver: ScriptedReceiver, pki: Pki
    ) -> None:
        with pytest.raises(httpx.TransportError):
            post_once(tls_receiver.url(), tls=TlsConfig(ca_bundle=str(pki.ca)))
        assert tls_receiver.received == []
