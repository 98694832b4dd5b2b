"""A supplier endpoint that accepts everything (204) without checking: a benchmark baseline.

It isolates the DSP's own throughput from the cost of the suppliers' verifying
receivers (which on a real network run on the suppliers' machines). On the
benchmark's two cores the sinks share the CPU with the DSP, so they are made
as cheap as an HTTP server gets in Python: an asyncio protocol on uvloop with
httptools (llhttp) parsing, about a fifth of the CPU per POST of a FastAPI
app under uvicorn, so the figures measure the DSP rather than its audience.

Run: ``python -m chfw.demo.sink --port P [--delay-ms D]`` (``POST /`` → 204, after D ms
when given; ``GET /healthz`` → 200 with the count received).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import httptools
import uvloop

_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
_CLOSE = b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"


class Counter:
    received = 0
    delay = 0.0  # seconds before each answer: an endpoint across a network, not on this host


class SinkProtocol(asyncio.Protocol):
    """One connection: every request answered 204 (``GET /healthz``: 200 with the count)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
            self.transport.close()

    def on_message_complete(self) -> None:
        assert self.transport is not None
        if self.parser.get_method() == b"GET":
            body = json.dumps({"status": "ok", "received": Counter.received}).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            return
        Counter.received += 1
        keep_alive = self.parser.should_keep_alive()
        if Counter.delay:
            asyncio.get_running_loop().call_later(Counter.delay, self._answer, keep_alive)
        else:
            self._answer(keep_alive)

    def _answer(self, keep_alive: bool) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        if keep_alive:
            self.transport.write(_NO_CONTENT)
        else:
            self.transport.write(_CLOSE)
            self.transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="answer each POST this long after it arrived (network and receiver latency)",
    )
    args = parser.parse_args(argv)
    Counter.delay = args.delay_ms / 1000.0
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
