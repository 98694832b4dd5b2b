"""chfw.serving: the guarded uvicorn set-up shared by `chfw serve` and `chfw receiver serve`."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx

from chfw.config import Settings
from chfw.serving import ClientLimits, server_config
from tests.intake.server import read_answer, running


async def slow_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, thinks for a while, answers with the body's length."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await asyncio.sleep(float(scope["path"].strip("/") or 0))
    body = str(size).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


class TestLimits:
    """The limits come from settings and reach uvicorn's configuration."""

    def test_from_settings(self) -> None:
        settings = Settings(
            server_request_timeout_seconds=7.5,
            server_keep_alive_seconds=3,
            server_max_header_bytes=1000,
            server_max_connections=9,
        )
        assert ClientLimits.from_settings(settings) == ClientLimits(7.5, 3, 1000, 9)

    def test_uvicorn_config(self) -> None:
        config = server_config(slow_echo, "127.0.0.1", 0, ClientLimits(5, 2.4, 100, 7))
        assert (config.timeout_keep_alive, config.limit_concurrency) == (2, 7)
        assert config.access_log is False


class TestRequestDeadline:
    """The deadline covers receiving a request, never the application's work on it."""

    def test_a_slow_answer_is_not_cut_off(self) -> None:
        with running(slow_echo, ClientLimits(request_seconds=0.3)) as (host, port):
            answer = httpx.post(f"http://{host}:{port}/1.0", content=b"x" * 10, timeout=10)
        assert (answer.status_code, answer.text) == (200, "10")

    def test_kept_alive_connection_serves_several_requests(self) -> None:
        with (
            running(slow_echo, ClientLimits(request_seconds=0.3)) as (host, port),
            httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as client,
        ):
            sizes = [client.post("/0.4", content=b"y" * n).text for n in (1, 2, 3)]
        assert sizes == ["1", "2", "3"]

    def test_a_trickled_body_is_refused_and_the_app_never_answers_it(self) -> None:
        with (
            running(slow_echo, ClientLimits(request_seconds=0.3)) as address,
            socket.create_connection(address) as slow,
        ):
            slow.sendall(b"POST /0 HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc")
            answer = read_answer(slow)
        assert answer.startswith(b"HTTP/1.1 408")
        assert answer.count(b"HTTP/1.1") == 1


class TestConnectionLimit:
    """Past max_connections, new requests are answered 503 instead of piling up."""

    def test_busy_server_answers_503(self) -> None:
        limits = ClientLimits(request_seconds=5, max_connections=2)
        with running(slow_echo, limits) as (host, port):
            alone = httpx.post(f"http://{host}:{port}/0", content=b"a", timeout=10)
            with socket.create_connection((host, port)):  # an idle second connection
                crowded = httpx.post(f"http://{host}:{port}/0", content=b"a", timeout=10)
        assert alone.status_code == 200
        assert crowded.status_code == 503
