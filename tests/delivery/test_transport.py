"""The keep-alive transport against real servers on 127.0.0.1: reuse, failures, TLS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from chfw.delivery.sender import TlsConfig, default_transport_factory
from chfw.delivery.transport import MAX_RESPONSE_BYTES, KeepAliveTransport, RawResponse, _head
from tests.delivery.conftest import Pki
from tests.delivery.receiver import Answer, ScriptedReceiver, free_port

XML = {"content-type": "application/xml"}
XML_RAW = [(b"content-type", b"application/xml")]


def client_for(tls: TlsConfig | None = None, timeout: float = 5.0) -> httpx.AsyncClient:
    """An httpx client on the transport: it must work behind httpx's own client too."""
    transport = default_transport_factory(tls or TlsConfig())
    return httpx.AsyncClient(transport=transport, timeout=timeout)


def run(scenario: Callable[[httpx.AsyncClient], Awaitable[None]], **kwargs: object) -> None:
    async def main() -> None:
        async with client_for(**kwargs) as client:  # type: ignore[arg-type]
            await scenario(client)

    asyncio.run(main())


class TestKeepAlive:
    """Requests reuse one connection; a connection the server dropped is replaced once."""

    def test_sequential_posts_share_a_connection(self, receiver: ScriptedReceiver) -> None:
        async def scenario(client: httpx.AsyncClient) -> None:
            for n in range(5):
                response = await client.post(receiver.url(), content=b"<n>%d</n>" % n, headers=XML)
                assert response.status_code == 204

        run(scenario)
        assert [r.body for r in receiver.received] == [b"<n>%d</n>" % n for n in range(5)]
        assert len({r.client_port for r in receiver.received}) == 1
        assert receiver.received[0].headers["content-length"] == "8"

    def test_server_restart_between_requests(self, receiver: ScriptedReceiver) -> None:
        async def scenario(client: httpx.AsyncClient) -> None:
            assert (await client.post(receiver.url(), content=b"<a/>")).status_code == 204
            await asyncio.to_thread(receiver.stop)
            await asyncio.to_thread(receiver.start)
            # The pooled connection is dead; the request goes out again on a new one.
            assert (await client.post(receiver.url(), content=b"<b/>")).status_code == 204

        run(scenario)
        assert [r.body for r in receiver.received] == [b"<a/>", b"<b/>"]
        assert receiver.received[0].client_port != receiver.received[1].client_port

    def test_streamed_body_is_sent_with_a_length(self, receiver: ScriptedReceiver) -> None:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"<a>", b"streamed", b"</a>"):
                yield part

        async def scenario(client: httpx.AsyncClient) -> None:
            assert (await client.post(receiver.url(), content=parts())).status_code == 204

        run(scenario)
        (seen,) = receiver.received
        assert seen.body == b"<a>streamed</a>"
        assert seen.headers["content-length"] == "15"
        assert "transfer-encoding" not in seen.headers


class TestAnswers:
    """Status, headers and body come back as the server sent them."""

    def test_error_answer_with_body(self, receiver: ScriptedReceiver) -> None:
        receiver.script(Answer(400, b"schema validation failed"))

        async def scenario(client: httpx.AsyncClient) -> None:
            response = await client.post(receiver.url(), content=b"<x/>")
            assert response.status_code == 400
            assert response.text == "schema validation failed"
            assert response.headers["content-type"] == "text/plain"
            assert response.http_version == "HTTP/1.1"

        run(scenario)

    def test_huge_answer_is_cut_and_connection_not_reused(self, receiver: ScriptedReceiver) -> None:
        """A hostile endpoint cannot make us hold more than MAX_RESPONSE_BYTES of its answer."""
        receiver.script(Answer(400, b"x" * (MAX_RESPONSE_BYTES * 4)), 204)

        async def scenario(client: httpx.AsyncClient) -> None:
            first = await client.post(receiver.url(), content=b"<x/>")
            assert first.status_code == 400
            assert len(first.content) == MAX_RESPONSE_BYTES
            second = await client.post(receiver.url(), content=b"<x/>")
            assert second.status_code == 204

        run(scenario)

    def test_read_timeout_then_recovery(self, receiver: ScriptedReceiver) -> None:
        receiver.script(Answer(204, delay=1.0))

        async def scenario(client: httpx.AsyncClient) -> None:
            with pytest.raises(httpx.ReadTimeout, match="no answer within"):
                await client.post(receiver.url(), content=b"<slow/>")
            assert (await client.post(receiver.url(), content=b"<next/>")).status_code == 204

        run(scenario, timeout=0.2)


class TestFailures:
    """Refused connections and broken servers raise httpx's own errors."""

    def test_nothing_listening(self) -> None:
        async def scenario(client: httpx.AsyncClient) -> None:
            with pytest.raises(httpx.ConnectError, match=r"cannot connect to 127\.0\.0\.1"):
                await client.post(f"http://127.0.0.1:{free_port()}/duis", content=b"<x/>")

        run(scenario)

    def test_unsupported_scheme(self) -> None:
        async def scenario(client: httpx.AsyncClient) -> None:
            with pytest.raises(httpx.UnsupportedProtocol, match="ftp"):
                await client.post("ftp://127.0.0.1/duis", content=b"<x/>")

        run(scenario)

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
        async def main() -> None:
            server = await _raw_server(reply)
            port = server.sockets[0].getsockname()[1]
            try:
                async with client_for() as client:
                    with pytest.raises(error, match=words):
                        await client.post(f"http://127.0.0.1:{port}/", content=b"<x/>")
            finally:
                server.close()
                await server.wait_closed()

        asyncio.run(main())

    def test_body_delimited_by_close(self) -> None:
        async def main() -> None:
            server = await _raw_server(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
            port = server.sockets[0].getsockname()[1]
            try:
                async with client_for() as client:
                    response = await client.post(f"http://127.0.0.1:{port}/", content=b"<x/>")
                    assert (response.status_code, response.text) == (200, "all of it")
            finally:
                server.close()
                await server.wait_closed()

        asyncio.run(main())

    def test_closed_transport_refuses(self) -> None:
        async def main() -> None:
            transport = KeepAliveTransport()
            await transport.aclose()
            with pytest.raises(RuntimeError, match="closed"):
                await transport.handle_async_request(httpx.Request("POST", "http://127.0.0.1/"))

        asyncio.run(main())


async def _raw_server(reply: bytes) -> asyncio.Server:
    """A TCP server that reads one request, writes ``reply`` and closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


class TestTls:
    """https is always verified; the user's CA bundle and client certificate are used."""

    def test_mutual_tls(self, tls_receiver: ScriptedReceiver, pki: Pki) -> None:
        tls = TlsConfig(str(pki.ca), str(pki.client_cert), str(pki.client_key))

        async def scenario(client: httpx.AsyncClient) -> None:
            for _ in range(2):
                response = await client.post(tls_receiver.url(), content=b"<x/>", headers=XML)
                assert response.status_code == 204

        run(scenario, tls=tls)
        assert len(tls_receiver.received) == 2
        assert tls_receiver.url().startswith("https://localhost:")

    def test_untrusted_server_certificate(self, tls_receiver: ScriptedReceiver, pki: Pki) -> None:
        tls = TlsConfig(str(pki.other_ca), str(pki.client_cert), str(pki.client_key))

        async def scenario(client: httpx.AsyncClient) -> None:
            with pytest.raises(httpx.ConnectError, match="not trusted"):
                await client.post(tls_receiver.url(), content=b"<x/>")

        run(scenario, tls=tls)
        assert tls_receiver.received == []

    def test_system_trust_store_does_not_know_a_private_ca(
        self, tls_receiver: ScriptedReceiver
    ) -> None:
        async def scenario(client: httpx.AsyncClient) -> None:
            with pytest.raises(httpx.ConnectError, match="not trusted"):
                await client.post(tls_receiver.url(), content=b"<x/>")

        run(scenario)

    def test_missing_client_certificate_is_refused(
        self, tls_receiver: ScriptedReceiver, pki: Pki
    ) -> None:
        async def scenario(client: httpx.AsyncClient) -> None:
            with pytest.raises(httpx.TransportError):
                await client.post(tls_receiver.url(), content=b"<x/>")

        run(scenario, tls=TlsConfig(ca_bundle=str(pki.ca)))
        assert tls_receiver.received == []


def post(url: str, body: bytes, *, timeout: float = 5.0, tls: TlsConfig | None = None) -> object:
    """One POST through the raw path the worker uses (``KeepAliveTransport.post``)."""

    async def main() -> object:
        transport = default_transport_factory(tls or TlsConfig())
        assert isinstance(transport, KeepAliveTransport)
        try:
            return await transport.post(httpx.URL(url), body, XML_RAW, timeout)
        finally:
            await transport.aclose()

    return asyncio.run(main())


class TestRawPost:
    """``post``, the worker's hot path without httpx's models, behaves as the httpx port does."""

    def test_posts_share_a_connection_and_send_exact_headers(
        self, receiver: ScriptedReceiver
    ) -> None:
        async def main() -> None:
            transport = KeepAliveTransport()
            try:
                for n in range(3):
                    answer = await transport.post(
                        httpx.URL(receiver.url()), b"<n>%d</n>" % n, [(b"X-Test", b"yes")], 5.0
                    )
                    assert isinstance(answer, RawResponse)
                    assert answer.status_code == 204
            finally:
                await transport.aclose()

        asyncio.run(main())
        assert [r.body for r in receiver.received] == [b"<n>%d</n>" % n for n in range(3)]
        assert len({r.client_port for r in receiver.received}) == 1
        headers = receiver.received[0].headers
        assert headers["content-length"] == "8"
        assert headers["x-test"] == "yes"
        assert headers["host"] == receiver.url().split("/")[2]

    def test_error_answer_reads_like_httpx(self, receiver: ScriptedReceiver) -> None:
        receiver.script(Answer(400, b"schema validation failed"))
        answer = post(receiver.url(), b"<x/>")
        assert isinstance(answer, RawResponse)
        assert (answer.status_code, answer.reason_phrase) == (400, "Bad Request")
        assert answer.text == "schema validation failed"
        assert answer.headers["content-type"] == "text/plain"

    def test_huge_answer_is_cut(self, receiver: ScriptedReceiver) -> None:
        receiver.script(Answer(400, b"x" * (MAX_RESPONSE_BYTES * 2)))
        answer = post(receiver.url(), b"<x/>")
        assert isinstance(answer, RawResponse)
        assert len(answer.content) == MAX_RESPONSE_BYTES

    def test_stale_connection_is_replaced_once(self, receiver: ScriptedReceiver) -> None:
        async def main() -> None:
            transport = KeepAliveTransport()
            url = httpx.URL(receiver.url())
            try:
                assert (await transport.post(url, b"<a/>", [], 5.0)).status_code == 204
                await asyncio.to_thread(receiver.stop)
                await asyncio.to_thread(receiver.start)
                assert (await transport.post(url, b"<b/>", [], 5.0)).status_code == 204
            finally:
                await transport.aclose()

        asyncio.run(main())
        assert [r.body for r in receiver.received] == [b"<a/>", b"<b/>"]

    def test_failures_are_httpx_errors(self, receiver: ScriptedReceiver) -> None:
        receiver.script(Answer(204, delay=1.0))
        with pytest.raises(httpx.ReadTimeout, match="no answer within"):
            post(receiver.url(), b"<slow/>", timeout=0.2)
        with pytest.raises(httpx.ConnectError, match="cannot connect"):
            post(f"http://127.0.0.1:{free_port()}/", b"<x/>")
        with pytest.raises(httpx.UnsupportedProtocol, match="ftp"):
            post("ftp://127.0.0.1/", b"<x/>")

    def test_ipv6_literal_host_header(self) -> None:
        assert _head(httpx.URL("http://[::1]:8443/duis"), []).startswith(
            b"POST /duis HTTP/1.1\r\nHost: [::1]:8443\r\n"
        )
        assert b"Host: example.org\r\n" in _head(httpx.URL("https://example.org/"), [])

    def test_closed_transport_refuses(self) -> None:
        async def main() -> None:
            transport = KeepAliveTransport()
            await transport.aclose()
            with pytest.raises(RuntimeError, match="closed"):
                await transport.post(httpx.URL("http://127.0.0.1/"), b"", [], 1.0)

        asyncio.run(main())
