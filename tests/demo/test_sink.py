"""The benchmark sink, as its own process on 127.0.0.1: 204 for every POST, counted."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from chfw.demo.processes import free_port


@contextmanager
def sink(*options: str) -> Iterator[httpx.Client]:
    """A running sink and a client for it; on exit SIGTERM must stop it cleanly (exit 0)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "chfw.demo.sink", "--port", str(port), *options]
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the sink did not start"
                    time.sleep(0.05)
            yield client
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_sink_accepts_and_counts() -> None:
    with sink() as client:
        assert client.get("/healthz").json() == {"status": "ok", "received": 0}
        statuses = [client.post("/", content=b"<x>%d</x>" % n).status_code for n in range(5)]
        big = client.post("/", content=b"x" * 300_000)  # a body over several reads
        closing = client.post("/", content=b"<y/>", headers={"connection": "close"})
        assert statuses == [204] * 5
        assert (big.status_code, closing.status_code) == (204, 204)
        assert client.get("/healthz").json()["received"] == 7


def test_delay_holds_each_answer() -> None:
    with sink("--delay-ms", "200") as client:
        started = time.monotonic()
        assert client.post("/", content=b"<x/>").status_code == 204
        assert time.monotonic() - started >= 0.2
