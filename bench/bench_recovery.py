"""Issue 23 item 3: how long a supplier back after an outage waits for its backlog.

Run: .venv/bin/python bench/bench_recovery.py [--hubs 200] [--down 180] [--seeds 5]

The issue's supplier, back after 3 minutes, got its last alert 10.5 minutes later: every
alert waited for its own next backoff. Here ``--hubs`` alerts (one per CH, one Service User)
meet an endpoint answering 503 for ``--down`` seconds of the worker's clock (a virtual one:
the worker is stepped from one retry time to the next, as its loop would be, so the figures
do not depend on the machine), then 204. Measured in the same run:

- **with fast recovery** (chfw now): seconds from the endpoint's return to the last alert
  delivered;
- **baseline**: when the last alert was due by its own backoff at that moment -- when it
  would have been delivered had the first success not made the backlog due (the behaviour
  before this issue).

Default retry settings (2 s doubling to 3600 s, full jitter). Medians over ``--seeds``
seeds. Figures go to docs/performance.md ("issue 23").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.dsp.delivery.helpers import SUPPLIER_A, MockTransport, add_user, alert  # noqa: E402

from chfw.core.domain import DeviceId  # noqa: E402
from chfw.dsp.delivery.worker import Worker  # noqa: E402
from chfw.dsp.store import outbox  # noqa: E402
from chfw.dsp.store.migrate import upgrade  # noqa: E402
from chfw.shared.config import Settings  # noqa: E402
from chfw.shared.db.engine import create_engine_for  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def one_run(hubs: int, down: float, seed: int, folder: Path) -> tuple[float, float]:
    """(seconds to the last delivery with fast recovery, baseline seconds)."""
    url = f"sqlite:///{folder / f'run-{seed}.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    clock = Clock()
    status = {"code": 503}
    add_user(engine, SUPPLIER_A, "https://a.example/duis")
    with engine.begin() as conn:
        outbox.enqueue(
            conn,
            [alert(f"R-{n}", hub=DeviceId.from_int(n + 1)) for n in range(hubs)],
            clock.now,
        )
    settings = Settings(database_url=url, worker_batch_size=500)

    def factory(_tls: object) -> MockTransport:
        return MockTransport(lambda _request: httpx.Response(status["code"]))

    async def run() -> tuple[float, float]:
        async with Worker(
            engine, settings, clock=clock, rng=random.Random(seed), transport_factory=factory
        ) as worker:
            start = clock.now
            while True:  # the outage: the worker tries each alert as it falls due
                await worker.run_until_idle()
                with engine.connect() as conn:
                    due = outbox.next_due_at(conn)
                if due is None or due - start >= timedelta(seconds=down):
                    break
                clock.now = due
            back = start + timedelta(seconds=down)
            clock.now = back
            status["code"] = 204
            with engine.connect() as conn:
                rows = outbox.list_rows(conn, state="pending", limit=hubs)
            baseline = max((r.next_attempt_at - back).total_seconds() for r in rows)
            while True:  # back: step to each next retry until everything is delivered
                await worker.run_until_idle()
                with engine.connect() as conn:
                    due = outbox.next_due_at(conn)
                if due is None:
                    break
                clock.now = max(clock.now, due)
            with engine.connect() as conn:
                delivered = outbox.list_rows(conn, state="delivered", limit=hubs)
            assert len(delivered) == hubs
            last = max(r.delivered_at for r in delivered if r.delivered_at is not None)
            return (last - back).total_seconds(), baseline

    try:
        return asyncio.run(run())
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hubs", type=int, default=200)
    parser.add_argument("--down", type=float, default=180.0, help="seconds the endpoint is down")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runs = [one_run(args.hubs, args.down, seed, Path(folder)) for seed in range(args.seeds)]
    fast = statistics.median(r[0] for r in runs)
    slow = statistics.median(r[1] for r in runs)
    print(f"{args.hubs} alerts, endpoint down {args.down:g} s, {args.seeds} seeds (medians)")
    print(f"last alert after the endpoint is back, fast recovery: {fast:.1f} s")
    print(f"last alert after the endpoint is back, by backoff (baseline): {slow:.1f} s")
    print(f"ratio: {slow / fast if fast else float('inf'):.0f}x" if fast else "ratio: n/a (0 s)")


if __name__ == "__main__":
    main()
