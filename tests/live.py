"""Serve an ASGI app with uvicorn in a background thread, on 127.0.0.1, for tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn


def start_server(config: uvicorn.Config) -> tuple[uvicorn.Server, threading.Thread]:
    """Start ``config`` in a daemon thread and wait (10 s at most) until it listens."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server did not start on port {config.port}")
        time.sleep(0.01)
    return server, thread


def stop_server(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=10)


@contextmanager
def running(config: uvicorn.Config) -> Iterator[uvicorn.Server]:
    """The started server for the length of the block; stopped however the block ends."""
    server, thread = start_server(config)
    try:
        yield server
    finally:
        stop_server(server, thread)
