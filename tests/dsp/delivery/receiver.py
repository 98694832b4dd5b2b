"""A scripted supplier endpoint: a tiny ASGI app served by uvicorn on 127.0.0.1 in a thread.

Each POST is recorded (path, headers, body) and answered from a script:
answers queued for requests whose body contains a marker come first, then
answers queued for any request, then the default (204).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.live import start_server, stop_server


@dataclass(frozen=True)
class Answer:
    """One scripted answer: a status, an optional body, an optional delay before answering."""

    status: int = 204
    body: bytes = b""
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    client_port: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ScriptedReceiver:
    """Records every request and answers from a script; ``start()``/``stop()`` the server."""

    port: int = field(default_factory=free_port)
    ssl: dict[str, Any] = field(default_factory=dict)  # uvicorn ssl_* options
    default: Answer = field(default_factory=Answer)
    received: list[Received] = field(default_factory=list)
    _general: deque[Answer] = field(default_factory=deque)
    _by_marker: dict[bytes, deque[Answer]] = field(default_factory=dict)
    arrived: threading.Event = field(default_factory=threading.Event)  # set on each request
    in_flight: int = 0
    max_in_flight: int = 0  # most requests being answered at once
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.ssl else "http"

    def url(self, path: str = "/duis") -> str:
        host = "localhost" if self.ssl else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}{path}"

    def script(self, *answers: Answer | int, match: bytes | None = None) -> None:
        """Queue answers for the next requests (whose body contains ``match``, if given)."""
        queue = self._general if match is None else self._by_marker.setdefault(match, deque())
        queue.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def bodies(self, status: int | None = None) -> list[bytes]:
        return [r.body for r in self.received if status is None or r.status == status]

    def _next_answer(self, body: bytes) -> Answer:
        for marker, queue in self._by_marker.items():
            if queue and marker in body:
                return queue.popleft()
        if self._general:
            return self._general.popleft()
        return self.default

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        answer = self._next_answer(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.arrived.set()
        try:
            if answer.delay:
                await asyncio.sleep(answer.delay)
        finally:
            self.in_flight -= 1
        self.received.append(
            Received(
                method=scope["method"],
                path=scope["path"],
                headers={k.decode(): v.decode() for k, v in scope["headers"]},
                body=body,
                status=answer.status,
                client_port=scope["client"][1] if scope.get("client") else 0,
            )
        )
        headers = [(b"content-type", b"text/plain")] if answer.body else []
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def start(self) -> ScriptedReceiver:
        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            lifespan="off",
            ws="none",
            access_log=False,
            **self.ssl,
        )
        self._server, self._thread = start_server(config)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            stop_server(self._server, self._thread)
        self._server = None
        self._thread = None
