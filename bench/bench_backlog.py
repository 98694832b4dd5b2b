"""Issue 5: drain a large outbox backlog; compare with a small one; watch worker memory.

Fills the outbox with N pending alerts (one real signed N64 document, distinct
ResponseIDs, ~2 alerts per CH and user), starts `chfw worker` process(es) against
benchmark sinks (`chfw.demo.sink`, 204 without checks: the DSP's own cost), and
samples delivered count and each worker's RSS every few seconds.

Reports, in one run: drain rate of a small backlog (the "empty queue" baseline),
drain rate of the large backlog, their ratio, and worker RSS (first, max, last).

With --stale-statistics (PostgreSQL), the outbox is ANALYZEd once the small
backlog is delivered, as autovacuum would on a quiet day: the large backlog is
then claimed under statistics that say pending rows are rare (a wave after a
quiet spell).

Run: .venv/bin/python bench/bench_backlog.py [--alerts 1000000] [--small 20000]
     [--workers 1] [--stale-statistics] [--database-url postgresql://...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.core.duis import ResponseId, render_n64
from chfw.core.signing import PemSigner, create_development_identity, sign_canonical
from chfw.demo.processes import free_port
from chfw.dsp.store import users
from chfw.dsp.store.migrate import upgrade
from chfw.dsp.store.outbox import NewAlert, enqueue
from chfw.dsp.store.schema import outbox
from chfw.shared.db.engine import create_engine_for
from proc_stats import cpu_seconds

DCC = UserId.parse("90-B3-D5-1F-30-00-00-02")
USERS = [UserId.from_int(0x90B3D51F30010000 + n) for n in range(1, 7)]
CHUNK = 20_000


def start_sinks(
    count: int, delay_ms: float = 0.0
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """``count`` benchmark sinks, each answering on its own port once this returns."""
    processes, urls = [], []
    for _ in range(count):
        process, url = _start_sink(delay_ms)
        processes.append(process)
        urls.append(url)
    return processes, urls


def _start_sink(delay_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    # A free port can be taken by someone else before the sink binds it: try another.
    for _ in range(5):
        port = free_port()
        command = [sys.executable, "-m", "chfw.demo.sink", "--port", str(port)]
        process = subprocess.Popen([*command, "--delay-ms", str(delay_ms)])
        url = f"http://127.0.0.1:{port}/"
        with httpx.Client(timeout=2) as client:
            for _ in range(300):
                if process.poll() is not None:
                    break
                try:
                    client.get(url + "healthz")
                    return process, url
                except httpx.TransportError:
                    time.sleep(0.1)
        process.kill()
        process.wait()
    raise RuntimeError("could not start a benchmark sink")


def fill(engine: sa.Engine, alerts: int, start: int) -> float:
    """Insert ``alerts`` pending rows; returns seconds taken."""
    key_pem, cert_pem = create_development_identity(common_name="bench")
    signer = PemSigner.from_pem(key_pem, cert_pem)
    now = datetime.now(UTC)
    template = sign_canonical(
        render_n64(
            response_id=ResponseId(DCC, DeviceId.from_int(1), 1),
            device_id=DeviceId.from_int(1),
            firmware_version=FirmwareVersion.parse("02010300"),
            duis_version=DuisVersion(5, 1),
            at=now,
        ),
        signer,
    )
    began = time.perf_counter()
    for offset in range(0, alerts, CHUNK):
        rows: list[NewAlert] = []
        for n in range(start + offset, start + min(alerts, offset + CHUNK)):
            device = DeviceId.from_int(0x001DA10000000000 + n // 2)
            rows.append(
                NewAlert(
                    response_id=f"{DCC}:{device}:{n}",
                    user_id=USERS[n % len(USERS)],
                    device_id=device,
                    alert_code="N64",
                    duis_version="5.1",
                    firmware_version="02010300",
                    history_id=None,
                    document=template,
                )
            )
        with engine.begin() as conn:
            enqueue(conn, rows, now)
    return time.perf_counter() - began


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def drain(
    engine: sa.Engine, target: int, total: int, workers: int, env: dict[str, str]
) -> dict[str, Any]:
    """Run workers until ``target`` rows are delivered (``total`` of them new in this run)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "chfw", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    began = time.monotonic()
    samples: list[tuple[float, int, list[float]]] = []
    cpu: list[float] = []  # the workers' CPU seconds at each sample
    try:
        while True:
            time.sleep(2.0)
            with engine.connect() as conn:
                done = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(outbox)
                    .where(outbox.c.state == "delivered")
                ).scalar_one()
            samples.append((time.monotonic() - began, done, [rss_mb(p.pid) for p in procs]))
            cpu.append(sum(cpu_seconds(p.pid) or 0.0 for p in procs))
            if done >= target:
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited early")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    seconds = samples[-1][0]
    rss = [max(s[2]) for s in samples]
    # Steady rate: from the first sample with deliveries (workers started) to the end.
    first = next(s for s in samples if s[1] > samples[0][1] or s is samples[-1])
    start_at, start_done = (0.0, target - total) if first is samples[0] else first[:2]
    steady = (samples[-1][1] - start_done) / max(1e-9, samples[-1][0] - start_at)
    # CPU per alert over the same window (the workers' start-up excluded when sampled).
    cpu_start = 0.0 if first is samples[0] else cpu[samples.index(first)]
    cpu_steady = cpu[-1] - cpu_start
    return {
        "alerts": total,
        "seconds": round(seconds, 1),
        "alerts_per_second": round(steady, 1),
        "worker_rss_mb_first": round(rss[0], 1),
        "worker_rss_mb_max": round(max(rss), 1),
        "worker_rss_mb_last": round(rss[-1], 1),
        "worker_cpu_seconds": round(cpu[-1], 2),
        "worker_cpu_us_per_alert": round(cpu_steady / max(1, samples[-1][1] - start_done) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default=os.environ.get("CHFW_BENCH_DATABASE_URL"))
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--stale-statistics",
        action="store_true",
        help="ANALYZE the outbox between the two backlogs, while every row is delivered",
    )
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'backlog.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    sinks, urls = start_sinks(len(USERS))
    env = {**os.environ, "CHFW_DATABASE_URL": url, "CHFW_LOG_LEVEL": "warning"}
    try:
        with engine.begin() as conn:
            for user, endpoint in zip(USERS, urls, strict=True):
                users.upsert_user(
                    conn,
                    users.ServiceUser(
                        user,
                        f"bench {user}",
                        frozenset({"IS"}),
                        DuisVersion(5, 1),
                        endpoint,
                        allow_insecure_http=True,  # local sinks
                    ),
                )
        fill(engine, args.small, 0)
        small = drain(engine, args.small, args.small, args.workers, env)
        if args.stale_statistics and engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE outbox SET (autovacuum_enabled = false)")
                conn.exec_driver_sql("ANALYZE outbox")
        fill_seconds = fill(engine, args.alerts, args.small)
        large = drain(engine, args.small + args.alerts, args.alerts, args.workers, env)
    finally:
        for sink in sinks:
            sink.terminate()
    result = {
        "backend": engine.dialect.name,
        "workers": args.workers,
        "stale_statistics": args.stale_statistics,
        "fill_seconds": round(fill_seconds, 1),
        "small_backlog": small,
        "large_backlog": large,
        "large_over_small_rate": round(large["alerts_per_second"] / small["alerts_per_second"], 3),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
