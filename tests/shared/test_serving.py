"""chfw.shared.serving: the guarded uvicorn set-up of `chfw serve` and `chfw receiver serve`."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chfw.shared.config import Settings
from chfw.shared.serving import (
    TESTED_UVICORN_VERSIONS,
    ClientLimits,
    GuardedHttpProtocol,
    server_config,
    untested_uvicorn,
)
from tests.dsp.intake.server import read_answer, running


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


class TestUvicornVersion:
    """GuardedHttpProtocol subclasses uvicorn's private HttpToolsProtocol and reads its state:
    it is tested against the releases in TESTED_UVICORN_VERSIONS only. Another uvicorn, installed
    or pinned, fails here first: run the slow-client tests against it (tests/shared/test_serving.py,
    tests/dsp/intake/test_hostile.py::TestSlowClients,
    tests/supplier/test_hostile_http.py), then add
    it to TESTED_UVICORN_VERSIONS and docs/security.md."""

    def test_the_installed_uvicorn_is_a_tested_release(self) -> None:
        assert uvicorn.__version__ in TESTED_UVICORN_VERSIONS, (
            f"uvicorn {uvicorn.__version__} is installed, but "
            "chfw.shared.serving.GuardedHttpProtocol "
            f"is tested against {sorted(TESTED_UVICORN_VERSIONS)} only"
        )

    def test_the_pinned_uvicorn_is_a_tested_release(self) -> None:
        constraints = Path(__file__).resolve().parents[2] / "constraints.txt"
        (pin,) = [
            line.split("==")[1].strip()
            for line in constraints.read_text().splitlines()
            if line.startswith("uvicorn==")
        ]
        assert pin in TESTED_UVICORN_VERSIONS, pin

    def test_another_uvicorn_is_warned_about_at_start(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert untested_uvicorn() is None
        monkeypatch.setattr(uvicorn, "__version__", "99.0.0")
        with pytest.warns(RuntimeWarning, match=r"uvicorn 99\.0\.0 is installed.*tested against"):
            server_config(slow_echo, "127.0.0.1", 0, ClientLimits())

    def test_the_private_state_it_reads_is_there(self) -> None:
        """The attributes and callbacks it relies on, on a live connection's protocol."""
        for name in (
            "connection_made",
            "connection_lost",
            "data_received",
            "on_message_begin",
            "on_headers_complete",
            "on_message_complete",
        ):
            assert callable(getattr(HttpToolsProtocol, name, None)), name
        seen: dict[str, object] = {}

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        original = GuardedHttpProtocol.on_message_complete

        def spy(self: GuardedHttpProtocol) -> None:
            seen.update(
                transport=self.transport,
                loop=self.loop,
                read_paused=self.flow.read_paused,
                cycle=self.cycle,
            )
            original(self)

        GuardedHttpProtocol.on_message_complete = spy  # type: ignore[method-assign]
        try:
            with running(app, ClientLimits()) as (host, port):
                assert httpx.post(f"http://{host}:{port}/", content=b"x").status_code == 204
        finally:
            GuardedHttpProtocol.on_message_complete = original  # type: ignore[method-assign]
        assert seen["read_paused"] is False
        assert isinstance(seen["loop"], asyncio.AbstractEventLoop)
        cycle = seen["cycle"]
        assert isinstance(getattr(cycle, "response_started", None), bool)
        assert isinstance(getattr(cycle, "response_complete", None), bool)
