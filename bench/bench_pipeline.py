"""Issue 3 (and 5): end-to-end alerts/s, CS06 answers at the intake to 204 at supplier receivers.

Runs `chfw demo` machinery (intake, N worker processes, one real verifying receiver
per supplier, all separate processes on 127.0.0.1) for a wave, then reads from the
DSP database: alerts/s from first intake to last delivery, and the intake→delivery
latency of every alert (outbox.created_at → delivered_at): p50, p99.

Baseline in the same run: a bare HTTP POST loop (httpx, keep-alive) to a trivial
204 endpoint, the ceiling for one client on this machine.

Issue 22: ``--compare-campaign ROUNDS`` runs the wave three ways, interleaved, ROUNDS times
each: without a campaign; as a one-phase campaign (the CSP takes every hub from the work
list at once, the intake counts every outcome: the bookkeeping alone); and as the demo's
campaign (a pilot, then the rest: the bookkeeping and the wait at the pilot's gate). It
reports the medians and their ratios to the run without: alerts/s, the intake's and the
whole machine's CPU per alert.

Run: .venv/bin/python bench/bench_pipeline.py [--hubs N] [--workers N] [--json FILE]
     [--compare-campaign ROUNDS] [--no-campaign]
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
from chfw.dsp.store.schema import outbox
from chfw.shared.db.engine import create_engine_for
from chfw.shared.db.sql import from_db

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
    """CPU seconds by role, sampled every half second until stopped.

    Roles are this process's descendants (intake, workers, sinks or receivers),
    this process itself (the simulator posting the wave) and, when
    ``postgres`` is set, the PostgreSQL server's processes on this host. A
    process's last sample before it exits is its total (within the interval).
    :meth:`window` gives each role's CPU between two moments, so start-up (imports,
    the estate, the baseline loop) does not count against the wave; on two cores
    it shows where the machine's CPU went.
    """

    ROLES = (("chfw.demo.sink", "sinks"), (" worker", "workers"), ("receiver serve", "receivers"))
    INTERVAL = 0.5

    def __init__(self, *, postgres: bool = False) -> None:
        self.postgres = postgres
        self.seen: dict[int, tuple[str, float, float]] = {}  # pid -> (role, CPU so far, offset)
        self.samples: list[tuple[float, dict[str, float]]] = []  # (time, role totals)
        self._parents: dict[int, int] = {}
        self._ignored: set[int] = set()
        self._tick = os.sysconf("SC_CLK_TCK")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self._sample()

    def _sample(self) -> None:
        me = os.getpid()
        stats: dict[int, float] = {}
        names: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in self._ignored:
                continue
            try:
                head, _, rest = Path(f"/proc/{entry}/stat").read_text().rpartition(")")
                fields = rest.split()
            except OSError:
                continue
            pid = int(entry)
            names[pid] = head.partition("(")[2]
            self._parents[pid] = int(fields[1])
            stats[pid] = (int(fields[11]) + int(fields[12])) / self._tick
        for pid, cpu in stats.items():
            role: str | None
            if pid in self.seen:
                role, _, offset = self.seen[pid]
            else:
                role = self._role(pid, me, self._parents, names)
                if role is None:
                    # Not ours: never read again (the sampling would otherwise cost ~1 % of
                    # a core; a benchmark's minutes do not wrap the process ids round).
                    self._ignored.add(pid)
                    continue
                # The server's processes already running count from the first sample on.
                offset = cpu if role == "postgresql" and not self.samples else 0.0
            self.seen[pid] = (role, cpu, offset)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        totals = {"simulator and bench": usage.ru_utime + usage.ru_stime}
        for role, cpu, offset in self.seen.values():
            totals[role] = totals.get(role, 0.0) + cpu - offset
        self.samples.append((time.time(), totals))

    def _role(
        self, pid: int, me: int, parents: dict[int, int], names: dict[int, str]
    ) -> str | None:
        if self.postgres and names.get(pid, "").startswith("postgres"):
            return "postgresql"
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        if ancestor != me:
            return None
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            return None
        role = next((name for key, name in self.ROLES if key in command), None)
        if role is None:
            role = "intake" if " serve " in command else "other"
        return role

    def stop(self) -> dict[str, float]:
        """Each role's CPU seconds over the whole run."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return {role: round(seconds, 2) for role, seconds in sorted(self.samples[-1][1].items())}

    def window(self, start: float, end: float) -> dict[str, float]:
        """Each role's CPU seconds from the last sample at or before ``start`` (a Unix time)
        to the first at or after ``end``."""
        before = next((totals for at, totals in reversed(self.samples) if at <= start), {})
        after = next((totals for at, totals in self.samples if at >= end), self.samples[-1][1])
        return {
            role: round(seconds - before.get(role, 0.0), 2)
            for role, seconds in sorted(after.items())
        }


def measure(
    hubs: int,
    workers: int,
    database_url: str | None,
    *,
    sink: bool = False,
    intakes: int = 1,
    campaign: bool = True,
    single_phase: bool = False,
) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="chfw-bench-"))
    console = Console(stderr=True, quiet=True)
    watch = CpuWatch(postgres=database_url is not None and _local(database_url))
    summary = run_demo(
        DemoOptions(
            hubs=hubs,
            workdir=workdir,
            workers=workers,
            intakes=intakes,
            database_url=database_url,
            sink_receivers=sink,
            campaign=campaign,
            single_phase=single_phase,
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
    first, last = min(created), max(delivered)
    span = (last - first).total_seconds()
    # The wave's own CPU: from the first alert made to the last delivered.
    wave_cpu = watch.window(first.timestamp(), last.timestamp())
    per_alert = {role: round(seconds / len(rows) * 1e6) for role, seconds in wave_cpu.items()}
    per_alert["all"] = sum(per_alert.values())
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "hubs": hubs,
        "intakes": intakes,
        "workers": workers,
        "backend": "postgresql" if database_url else "sqlite",
        "campaign": ("one phase" if single_phase else "pilot, then the rest") if campaign else None,
        "receivers": "sink (accept, no checks)" if sink else "chfw receiver (verify, record)",
        "alerts_delivered": len(rows),
        "alerts_per_second": round(len(rows) / span, 1),
        "intake_messages_per_second": summary["timing"]["messages_per_second"],
        "latency_p50_seconds": round(quantiles[49], 3),
        "latency_p99_seconds": round(quantiles[98], 3),
        "checks_passed": all(ok is not False for ok in summary["checks"].values()),
        "cpu_seconds": cpu,
        "wave_cpu_seconds": wave_cpu,
        # CPU per alert delivered within the wave, by role: on a saturated machine the
        # rate is the cores over "all".
        "wave_cpu_us_per_alert": per_alert,
        # The DSP's own CPU per alert delivered: intake + delivery workers.
        "dsp_cpu_us_per_alert": round(
            (cpu.get("intake", 0.0) + cpu.get("workers", 0.0)) / max(1, len(rows)) * 1e6, 1
        ),
    }


def _local(database_url: str) -> bool:
    """Whether the database server runs on this host (its CPU is then counted)."""
    host = sa.engine.make_url(database_url).host or "localhost"
    return host in {"localhost", "127.0.0.1", "::1"} or host.startswith("/")


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
    parser.add_argument(
        "--no-campaign", action="store_true", help="post the wave at once, not as a campaign"
    )
    parser.add_argument(
        "--compare-campaign",
        type=int,
        metavar="ROUNDS",
        help="run without, with a one-phase and with a two-phase campaign, interleaved, ROUNDS "
        "times each (issue 22)",
    )
    args = parser.parse_args()
    if args.compare_campaign:
        compare_campaign(args)
        return
    baseline = post_loop_rate()
    result = measure(
        args.hubs,
        args.workers,
        args.database_url,
        sink=args.sink,
        intakes=args.intakes,
        campaign=not args.no_campaign,
    )
    result["baseline_bare_posts_per_second"] = round(baseline, 1)
    rate = result["alerts_per_second"]
    assert isinstance(rate, float)
    result["ratio_to_bare_posts"] = round(rate / baseline, 3)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def compare_campaign(args: argparse.Namespace) -> None:
    """Without, with a one-phase and with a two-phase campaign, interleaved; medians and
    their ratios to the run without (issue 22)."""
    if args.database_url:
        raise SystemExit("--compare-campaign needs a fresh database per run: use SQLite")
    variants = {"without": (False, False), "one phase": (True, True), "pilot+rest": (True, False)}
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in variants}
    for _ in range(args.compare_campaign):
        for name, (campaign, single) in variants.items():
            run = measure(
                args.hubs,
                args.workers,
                None,
                sink=args.sink,
                campaign=campaign,
                single_phase=single,
            )
            runs[name].append(run)
            print(json.dumps({k: run[k] for k in _SHOWN}), file=sys.stderr)

    def median(name: str, key: str) -> float:
        return statistics.median(_number(run, key) for run in runs[name])

    result: dict[str, object] = {"runs": [run for name in variants for run in runs[name]]}
    for key in ("alerts_per_second", "intake_us_per_alert", "all_us_per_alert"):
        figures: dict[str, float] = {name: median(name, key) for name in variants}
        for name in ("one phase", "pilot+rest"):
            figures[f"ratio {name}"] = round(figures[name] / figures["without"], 3)
        result[key] = figures
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


_SHOWN = ("campaign", "alerts_per_second", "intake_messages_per_second", "wave_cpu_us_per_alert")


def _number(run: dict[str, object], key: str) -> float:
    per_alert = run["wave_cpu_us_per_alert"]
    assert isinstance(per_alert, dict)
    value = {
        "intake_us_per_alert": per_alert.get("intake", 0),
        "all_us_per_alert": per_alert.get("all", 0),
    }.get(key, run.get(key))
    assert isinstance(value, int | float)
    return float(value)


if __name__ == "__main__":
    main()
