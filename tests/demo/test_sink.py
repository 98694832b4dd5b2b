"""The benchmark sink, as its own process on 127.0.0.1: 204 for every POST, counted."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from chfw.demo.processes import free_port


def test_sink_accepts_counts_and_stops_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "chfw.demo.sink", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert client.get("/healthz").json() == {"status": "ok", "received": 0}
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the sink did not start"
                    time.sleep(0.05)
            statuses = [client.post("/", content=b"<x>%d</x>" % n).status_code for n in range(5)]
            big = client.post("/", content=b"x" * 300_000)  # a body over several reads
            closing = client.post("/", content=b"<y/>", headers={"connection": "close"})
            assert statuses == [204] * 5
            assert (big.status_code, closing.status_code) == (204, 204)
            assert client.get("/healthz").json()["received"] == 7
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_delay_holds_each_answer() -> None:
    """With --delay-ms each answer waits, without holding up the other connections."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "chfw.demo.sink", "--port", str(port), "--delay-ms", "200"]
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
            started = time.monotonic()
            assert client.post("/", content=b"<x/>").status_code == 204
            assert time.monotonic() - started >= 0.2
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
