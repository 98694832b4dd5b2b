"""Issue 3 (and 5): end-to-end alerts/s, CS06 answers at the intake to 204 at supplier receivers.

Runs `chfw demo` machinery (intake, N worker processes, one real verifying receiver
per supplier, all separate processes on 127.0.0.1) for a wave, then reads from the
DSP database: alerts/s from first intake to last delivery, and the intake→delivery
latency of every alert (outbox.created_at → delivered_at): p50, p99.

Baseline in the same run: a bare HTTP POST loop (httpx, keep-alive) to a trivial
204 endpoint, the ceiling for one client on this machine.

Run: .venv/bin/python bench/bench_pipeline.py [--hubs N] [--workers N] [--json FILE]
     CHFW_DATABASE_URL=postgresql://... for PostgreSQL (an empty database).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from rich.console import Console

from chfw.demo.processes import free_port
from chfw.demo.run import DemoOptions, run_demo
from chfw.store._sql import from_db
from chfw.store.engine import create_engine_for
from chfw.store.schema import outbox

HERE = Path(__file__).resolve().parent


def post_loop_rate(requests: int = 3000) -> float:
    """Bare POSTs/s from one keep-alive httpx client to uvicorn+FastAPI answering 204."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "_http_baseline:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=HERE,
    )
    body = b"<x>" + b"a" * 1500 + b"</x>"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            started = time.perf_counter()
            for _ in range(requests):
                client.post("/", content=body, headers={"content-type": "application/xml"})
            return requests / (time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait()


def measure(
    hubs: int, workers: int, database_url: str | None, *, sink: bool = False
) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="chfw-bench-"))
    console = Console(stderr=True, quiet=True)
    summary = run_demo(
        DemoOptions(
            hubs=hubs,
            workdir=workdir,
            workers=workers,
            database_url=database_url,
            sink_receivers=sink,
        ),
        console,
    )
    url = database_url or f"sqlite:///{workdir / 'dsp' / 'chfw.db'}"
    engine = create_engine_for(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.created_at, outbox.c.delivered_at).where(
                outbox.c.state == "delivered"
            )
        ).all()
    engine.dispose()
    created = [from_db(r.created_at) for r in rows]
    delivered = [from_db(r.delivered_at) for r in rows]
    latencies = sorted((d - c).total_seconds() for c, d in zip(created, delivered, strict=True))
    span = (max(delivered) - min(created)).total_seconds()
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "hubs": hubs,
        "workers": workers,
        "backend": "postgresql" if database_url else "sqlite",
        "receivers": "sink (accept, no checks)" if sink else "chfw receiver (verify, record)",
        "alerts_delivered": len(rows),
        "alerts_per_second": round(len(rows) / span, 1),
        "intake_messages_per_second": summary["timing"]["messages_per_second"],
        "latency_p50_seconds": round(quantiles[49], 3),
        "latency_p99_seconds": round(quantiles[98], 3),
        "checks_passed": all(ok is not False for ok in summary["checks"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hubs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--sink", action="store_true", help="endpoints accept without verifying (DSP only)"
    )
    args = parser.parse_args()
    baseline = post_loop_rate()
    result = measure(args.hubs, args.workers, args.database_url, sink=args.sink)
    result["baseline_bare_posts_per_second"] = round(baseline, 1)
    rate = result["alerts_per_second"]
    assert isinstance(rate, float)
    result["ratio_to_bare_posts"] = round(rate / baseline, 3)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
