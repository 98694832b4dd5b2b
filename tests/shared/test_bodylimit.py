"""chfw.shared.bodylimit: one request body limit for every route of chfw's apps, served for real."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from chfw.shared.bodylimit import BodyLimit, BodyTooLarge, declared_length, read_within
from tests.dsp.intake.server import read_answer, running

LIMIT = 1024


@pytest.fixture
def seen() -> list[int]:
    """Sizes of the bodies the application was handed, one per request that read one."""
    return []


@pytest.fixture
def address(seen: list[int]) -> Iterator[tuple[str, int]]:
    app = FastAPI()
    app.add_middleware(BodyLimit, max_bytes=LIMIT)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(len(body))
        return {"size": len(body)}

    @app.get("/ignores-body")
    async def ignores_body() -> dict[str, str]:
        return {"status": "ok"}

    with running(app) as served:
        yield served


def url(address: tuple[str, int], path: str) -> str:
    return f"http://{address[0]}:{address[1]}{path}"


class TestDeclaredLength:
    """A Content-Length over the limit is refused before the application runs."""

    def test_refused_with_413_and_closed(self, address: tuple[str, int], seen: list[int]) -> None:
        answer = httpx.post(url(address, "/echo"), content=b"x" * (LIMIT + 1), timeout=10)
        assert answer.status_code == 413
        assert answer.json() == {"detail": f"body exceeds {LIMIT} bytes"}
        assert answer.headers["connection"] == "close"
        assert seen == []

    def test_any_method_is_limited(self, address: tuple[str, int]) -> None:
        answer = httpx.request(
            "GET", url(address, "/ignores-body"), content=b"x" * (LIMIT + 1), timeout=10
        )
        assert answer.status_code == 413

    def test_a_body_at_the_limit_is_read(self, address: tuple[str, int], seen: list[int]) -> None:
        answer = httpx.post(url(address, "/echo"), content=b"x" * LIMIT, timeout=10)
        assert (answer.status_code, answer.json()) == (200, {"size": LIMIT})
        assert seen == [LIMIT]


class TestStreamedBody:
    """A chunked body is cut off as soon as it passes the limit; the rest is never read."""

    def test_refused_with_413_and_closed(self, address: tuple[str, int], seen: list[int]) -> None:
        def chunks() -> Iterator[bytes]:
            for _ in range(64):
                yield b"x" * 256

        answer = httpx.post(url(address, "/echo"), content=chunks(), timeout=10)
        assert answer.status_code == 413
        assert answer.headers["connection"] == "close"
        assert seen == []  # the handler never got a body

    def test_the_server_stops_reading(self, address: tuple[str, int]) -> None:
        head = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        with socket.create_connection(address) as sock:
            sock.sendall(head + b"%x\r\n%s\r\n" % (LIMIT + 1, b"x" * (LIMIT + 1)))
            answer = read_answer(sock)  # returns once the server closes the connection
        assert answer.startswith(b"HTTP/1.1 413")

    def test_a_route_that_ignores_the_body_closes_the_connection(
        self, address: tuple[str, int]
    ) -> None:
        head = b"GET /ignores-body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        with socket.create_connection(address) as sock:
            sock.sendall(head + b"10\r\n" + b"x" * 16 + b"\r\n")  # and more to come, never sent
            answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in answer.lower()

    def test_a_request_without_a_body_keeps_its_connection(self, address: tuple[str, int]) -> None:
        with httpx.Client(base_url=url(address, ""), timeout=10) as client:
            answers = [client.get("/ignores-body") for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 200]
        assert all("close" not in a.headers.get("connection", "") for a in answers)


class TestReadWithin:
    """read_within: the body for a raw ASGI route, or BodyTooLarge as soon as it passes."""

    @staticmethod
    def receiver(*messages: dict[str, Any]) -> Any:
        queue = list(messages)
        taken: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            taken.append(queue.pop(0))
            return taken[-1]

        receive.taken = taken  # type: ignore[attr-defined]
        return receive

    def test_whole_body(self) -> None:
        receive = self.receiver(
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"c", "more_body": False},
        )
        assert asyncio.run(read_within(receive, 3)) == b"abc"

    def test_stops_at_the_first_message_past_the_limit(self) -> None:
        receive = self.receiver(
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"cd", "more_body": True},
            {"type": "http.request", "body": b"ef", "more_body": False},
        )
        with pytest.raises(BodyTooLarge) as raised:
            asyncio.run(read_within(receive, 3))
        assert (raised.value.size, raised.value.limit) == (4, 3)
        assert len(receive.taken) == 2

    def test_client_gone(self) -> None:
        receive = self.receiver({"type": "http.disconnect"})
        assert asyncio.run(read_within(receive, 3)) is None

    def test_declared_length(self) -> None:
        assert declared_length([(b"host", b"x"), (b"content-length", b"12")]) == 12
        assert declared_length([(b"transfer-encoding", b"chunked")]) is None
