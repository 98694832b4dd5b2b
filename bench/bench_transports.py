"""Issue 21 item 3: which HTTP client should the delivery worker post with? Measured in one run.

The same delivery workload through each client: N POSTs of a ~1.7 KB XML body over HTTPS
(TLS verified against a throw-away CA) to a sink on 127.0.0.1 answering 204 (the demo's sink,
:mod:`chfw.demo.sink`, in a process of its own), from C coroutines, each posting one alert
after another as the worker's in-flight slots do (C = ``delivery_max_in_flight``, 16). The
client runs on uvloop, as ``chfw worker`` does. Cases:

- ``httpx_client`` -- the baseline: :class:`httpx.AsyncClient` with its standard transport
  (httpcore; HTTP/1.1, keep-alive, a pool of C connections);
- ``httpx_port`` -- httpx's standard transport called directly, as chfw's sender called
  any transport but its own before issue 21 (an ``httpx.Request`` to
  ``handle_async_request``, without the client's layers);
- ``custom`` -- chfw's :class:`~chfw.dsp.delivery.transport.KeepAliveTransport` as the worker
  uses it: ``send`` calling its ``post`` (the sender's one path since issue 21);
- ``aiohttp`` -- :class:`aiohttp.ClientSession` (``TCPConnector(limit=C)``), when installed
  (it is not a chfw dependency: ``pip install aiohttp`` into the venv for this benchmark).

Each round runs every case once, in a rotated order; each case gets a fresh client, a
warm-up (its C connections opened and used) and then the timed N POSTs. Reported per case:
the client process's CPU per POST (µs; the sink's CPU is in its own process) and the wall
rate, each the median over rounds, and the ratio of CPU per POST to ``httpx_client`` in the
same round (median and range over rounds), and to ``aiohttp`` when it ran.

Run: .venv/bin/python bench/bench_transports.py [--posts 4000] [--concurrency 16]
         [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvloop

from chfw.demo.sink import SinkProtocol
from chfw.dsp.delivery.sender import send
from chfw.dsp.delivery.transport import KeepAliveTransport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.dsp.delivery.receiver import free_port
from tests.pki import Pki

BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><sr:Response xmlns:sr="http://www.dccinterface.co.uk'
    b'/ServiceUserGateway"><sr:Header>'
    + b"<sr:Pad>" + b"x" * 1500 + b"</sr:Pad>"
    + b"</sr:Header></sr:Response>"
)  # fmt: skip
HEADERS = {"content-type": "application/xml", "accept": "*/*", "user-agent": "bench"}
TIMEOUT = 10.0

Post = Callable[[], Awaitable[int]]


async def _case(
    name: str, url: str, tls: ssl.SSLContext, concurrency: int
) -> tuple[Post, Callable[[], Awaitable[None]]]:
    """A POST function for case ``name`` and how to close its client."""
    if name == "custom":
        transport = KeepAliveTransport(ssl_context=tls)

        async def post() -> int:
            result = await send(transport, url, BODY, TIMEOUT)
            assert result.verdict == "delivered", result
            return result.status_code or 0

        return post, transport.aclose
    if name == "httpx_port":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        standard = httpx.AsyncHTTPTransport(verify=tls, limits=limits)

        headers = httpx.Headers(HEADERS)
        target = httpx.URL(url)
        timeouts = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), TIMEOUT)}

        async def post_standard() -> int:
            request = httpx.Request(
                "POST", target, headers=headers, content=BODY, extensions=timeouts
            )
            response = await standard.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
            return response.status_code

        return post_standard, standard.aclose
    if name == "httpx_client":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = httpx.AsyncClient(verify=tls, limits=limits, timeout=TIMEOUT)

        async def post_client() -> int:
            response = await client.post(url, content=BODY, headers=HEADERS)
            return response.status_code

        return post_client, client.aclose
    if name == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, ssl=tls),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
        )

        async def post_aiohttp() -> int:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()
                return response.status

        return post_aiohttp, session.close
    raise ValueError(name)


async def _drive(post: Post, posts: int, concurrency: int) -> None:
    remaining = posts

    async def slot() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status = await post()
            if status != 204:
                raise RuntimeError(f"the sink answered {status}")

    await asyncio.gather(*(slot() for _ in range(concurrency)))


async def _measure(
    name: str, url: str, tls: ssl.SSLContext, posts: int, concurrency: int
) -> dict[str, float]:
    post, close = await _case(name, url, tls, concurrency)
    try:
        await _drive(post, concurrency * 8, concurrency)  # warm-up: every connection open
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        await _drive(post, posts, concurrency)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await close()
    return {"cpu_us_per_post": cpu / posts * 1e6, "posts_per_second": posts / wall}


def _start_sink(folder: Path, pki: Pki) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, __file__, "--sink", str(port), str(pki.server_cert)]
    process = subprocess.Popen([*command, str(pki.server_key)], cwd=folder)
    tls = ssl.create_default_context(cafile=str(pki.ca))
    for _ in range(300):
        if process.poll() is not None:
            break
        try:
            with httpx.Client(verify=tls, timeout=2) as client:
                client.get(f"https://127.0.0.1:{port}/healthz")
            return process, port
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the benchmark sink did not start")


async def _sink(port: int, cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = await asyncio.get_running_loop().create_server(
        SinkProtocol, "127.0.0.1", port, ssl=context, backlog=1024
    )
    async with server:
        await server.serve_forever()


def _cases() -> list[str]:
    cases = ["httpx_client", "httpx_port", "custom"]
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("aiohttp is not installed: its case is skipped", file=sys.stderr)
    else:
        cases.append("aiohttp")
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=4000, help="timed POSTs per case and round")
    parser.add_argument("--concurrency", type=int, default=16, help="POSTs in flight")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sink", nargs=3, metavar=("PORT", "CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        uvloop.run(_sink(int(args.sink[0]), args.sink[1], args.sink[2]))
        return

    cases = _cases()
    folder = Path(tempfile.mkdtemp(prefix="bench-transports-"))
    pki = Pki.create(folder)
    sink, port = _start_sink(folder, pki)
    url = f"https://127.0.0.1:{port}/duis"
    tls = ssl.create_default_context(cafile=str(pki.ca))
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        for number in range(args.rounds):
            order = cases[number % len(cases) :] + cases[: number % len(cases)]
            figures = {}
            for name in order:
                figures[name] = uvloop.run(_measure(name, url, tls, args.posts, args.concurrency))
            for base in ("httpx_client", "aiohttp"):
                if base in figures:
                    for figure in figures.values():
                        figure[f"cpu_ratio_to_{base}"] = (
                            figure["cpu_us_per_post"] / figures[base]["cpu_us_per_post"]
                        )
            rounds.append(figures)
            print(json.dumps({"round": number + 1, **figures}), flush=True)
    finally:
        sink.terminate()
        sink.wait()

    summary: dict[str, dict[str, Any]] = {}
    for name in cases:
        cpu = [r[name]["cpu_us_per_post"] for r in rounds]
        rate = [r[name]["posts_per_second"] for r in rounds]
        ratio = [r[name]["cpu_ratio_to_httpx_client"] for r in rounds]
        to_aiohttp = [r[name].get("cpu_ratio_to_aiohttp", 0.0) for r in rounds]
        summary[name] = {
            "cpu_us_per_post_median": round(statistics.median(cpu), 1),
            "cpu_us_per_post_range": [round(min(cpu), 1), round(max(cpu), 1)],
            "posts_per_second_median": round(statistics.median(rate), 1),
            "cpu_ratio_to_httpx_client_median": round(statistics.median(ratio), 3),
            "cpu_ratio_to_httpx_client_range": [round(min(ratio), 3), round(max(ratio), 3)],
        }
        if "aiohttp" in cases:
            summary[name]["cpu_ratio_to_aiohttp_median"] = round(statistics.median(to_aiohttp), 3)
            summary[name]["cpu_ratio_to_aiohttp_range"] = [
                round(min(to_aiohttp), 3),
                round(max(to_aiohttp), 3),
            ]
    result = {
        "posts": args.posts,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "body_bytes": len(BODY),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "versions": _versions(),
        "summary": summary,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("httpx", "httpcore", "sniffio", "anyio", "aiohttp", "httptools", "uvloop"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


if __name__ == "__main__":
    main()
