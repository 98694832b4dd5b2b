"""Serve an ASGI app the way `chfw serve` does (guarded uvicorn) in a thread."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chfw.shared.forwarded import TrustedProxies
from chfw.shared.serving import ClientLimits, server_config
from tests.live import running as serving_in_thread


@contextmanager
def running(
    app: Any,
    limits: ClientLimits | None = None,
    tls: dict[str, Any] | None = None,
    port: int = 0,
    proxies: TrustedProxies | None = None,
) -> Iterator[tuple[str, int]]:
    """Yield (host, port) while ``app`` is served on 127.0.0.1 with chfw's server settings."""
    config = server_config(
        app,
        "127.0.0.1",
        port,
        limits or ClientLimits(),
        tls,
        proxies,
        log_level="critical",
        lifespan="off",
    )
    with serving_in_thread(config) as server:
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield host, port


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
