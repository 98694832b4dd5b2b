"""Issue 5: delivery with 1, 2 and 4 worker processes on one outbox, measured in one run.

For each endpoint latency (``--delays``, ms; 0 = a sink on this host answering at
once) and each worker count (``--workers``), fills the outbox with N pending signed
N64s for six Service Users, starts that many `chfw worker` processes against
benchmark sinks (`chfw.demo.sink --delay-ms D`) and measures the steady drain rate
and the workers' CPU per alert. The baseline of each latency is its one-worker run.

Why two latencies: with answers at once, delivery is CPU-bound, and on a 2-core
machine every added worker competes with the others, the sinks and the database
for the same two cores, so the rate cannot double; with a realistic endpoint
latency (a supplier's receiver across the internet: TLS, verification, a commit:
tens to hundreds of ms), one worker is bound by its in-flight limit per endpoint
(``delivery_max_in_flight``) and added workers add throughput until the CPU is
full. CPU per alert staying flat as workers are added shows that sharing one
outbox (``FOR UPDATE SKIP LOCKED`` claims, per-CH ordering) costs nothing extra.

Run: .venv/bin/python bench/bench_scaling.py --database-url postgresql://... \
         [--alerts 40000] [--workers 1 2 4] [--delays 0 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench_backlog import USERS, drain, fill, start_sinks
from chfw.core.domain import DuisVersion
from chfw.dsp.store import users
from chfw.dsp.store.migrate import upgrade
from chfw.dsp.store.schema import outbox
from chfw.shared.db.engine import create_engine_for


def run_delay(
    url: str, delay_ms: float, worker_counts: list[int], alerts: int, env: dict[str, str]
) -> list[dict[str, Any]]:
    engine = create_engine_for(url)
    sinks, urls = start_sinks(len(USERS), delay_ms)
    results = []
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(outbox))
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
        start = 0
        for workers in worker_counts:
            fill(engine, alerts, start)
            start += alerts
            result = drain(engine, start, alerts, workers, env)
            result.update(workers=workers, endpoint_delay_ms=delay_ms)
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        for sink in sinks:
            sink.terminate()
        engine.dispose()
    base = results[0]["alerts_per_second"]
    for result in results:
        result["speedup_over_1_worker"] = round(result["alerts_per_second"] / base, 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=40_000, help="alerts per drain")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--delays", type=float, nargs="+", default=[0.0, 100.0])
    parser.add_argument("--database-url", default=os.environ.get("CHFW_BENCH_DATABASE_URL"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'scaling.db'}"
    upgrade(url)
    env = {**os.environ, "CHFW_DATABASE_URL": url, "CHFW_LOG_LEVEL": "warning"}
    runs = [
        run
        for delay in args.delays
        for run in run_delay(url, delay, args.workers, args.alerts, env)
    ]
    result = {
        "backend": create_engine_for(url).dialect.name,
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
