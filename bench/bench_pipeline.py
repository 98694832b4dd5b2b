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
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
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


class CpuWatch:
    """CPU seconds of this process's descendants, by role, sampled until stopped.

    A process's last sample before it exits is its total (within the 1 s
    interval); on two cores this shows where the CPU of a run went.
    """

    ROLES = (("chfw.demo.sink", "sinks"), (" worker", "workers"), ("receiver serve", "receivers"))

    def __init__(self) -> None:
        self.seen: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
        while not self._stop.wait(1.0):
            parents: dict[int, int] = {}
            stats: dict[int, float] = {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(entry)] = int(fields[1])
                stats[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
            for pid, cpu in stats.items():
                ancestor = parents.get(pid)
                while ancestor and ancestor != me:
                    ancestor = parents.get(ancestor)
                if ancestor != me:
                    continue
                if pid not in self.seen:
                    try:
                        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                    except OSError:
                        continue
                    self.seen[pid] = (command.decode(errors="replace"), cpu)
                self.seen[pid] = (self.seen[pid][0], cpu)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        roles: dict[str, float] = {}
        for command, cpu in self.seen.values():
            role = next((name for key, name in self.ROLES if key in command), None)
            if role is None:
                role = "intake" if " serve " in command else "other"
            roles[role] = roles.get(role, 0.0) + cpu
        usage = resource.getrusage(resource.RUSAGE_SELF)
        roles["simulator and bench"] = usage.ru_utime + usage.ru_stime
        return {role: round(seconds, 2) for role, seconds in sorted(roles.items())}


def measure(
    hubs: int, workers: int, database_url: str | None, *, sink: bool = False, intakes: int = 1
) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="chfw-bench-"))
    console = Console(stderr=True, quiet=True)
    watch = CpuWatch()
    summary = run_demo(
        DemoOptions(
            hubs=hubs,
            workdir=workdir,
            workers=workers,
            intakes=intakes,
            database_url=database_url,
            sink_receivers=sink,
        ),
        console,
    )
    cpu = watch.stop()
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
        "intakes": intakes,
        "workers": workers,
        "backend": "postgresql" if database_url else "sqlite",
        "receivers": "sink (accept, no checks)" if sink else "chfw receiver (verify, record)",
        "alerts_delivered": len(rows),
        "alerts_per_second": round(len(rows) / span, 1),
        "intake_messages_per_second": summary["timing"]["messages_per_second"],
        "latency_p50_seconds": round(quantiles[49], 3),
        "latency_p99_seconds": round(quantiles[98], 3),
        "checks_passed": all(ok is not False for ok in summary["checks"].values()),
        "cpu_seconds": cpu,
        # The DSP's own CPU per alert delivered: intake + delivery workers.
        "dsp_cpu_us_per_alert": round(
            (cpu.get("intake", 0.0) + cpu.get("workers", 0.0)) / max(1, len(rows)) * 1e6, 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hubs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--intakes", type=int, default=1, help="intake processes")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--sink", action="store_true", help="endpoints accept without verifying (DSP only)"
    )
    args = parser.parse_args()
    baseline = post_loop_rate()
    result = measure(
        args.hubs, args.workers, args.database_url, sink=args.sink, intakes=args.intakes
    )
    result["baseline_bare_posts_per_second"] = round(baseline, 1)
    rate = result["alerts_per_second"]
    assert isinstance(rate, float)
    result["ratio_to_bare_posts"] = round(rate / baseline, 3)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
