"""Serve an ASGI app with uvicorn on 127.0.0.1 (a free port) in a thread, for HTTP tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.live import running


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Yield the base URL while ``app`` is served; stop the server on exit."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off"
    )
    with running(config) as server:
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
