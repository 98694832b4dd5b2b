"""Serve an ASGI app the way `chfw serve` does (chfw.serving's guarded uvicorn) in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from chfw.serving import ClientLimits, server_config


@contextmanager
def running(
    app: Any,
    limits: ClientLimits | None = None,
    tls: dict[str, Any] | None = None,
    port: int = 0,
) -> Iterator[tuple[str, int]]:
    """Yield (host, port) while ``app`` is served on 127.0.0.1 with chfw's server settings."""
    config = server_config(
        app, "127.0.0.1", port, limits or ClientLimits(), tls, log_level="critical", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="chfw-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    try:
        yield host, port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def read_answer(sock: socket.socket, limit: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (bounded by ``limit`` s)."""
    sock.settimeout(limit)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)
