"""Issue 24 item 2: what a DSP failing as a whole costs the N999 follow-up, in one process.

Run: .venv/bin/python bench/bench_lookup_backoff.py [--hubs 112] [--seconds 25] [--seeds 5]

The issue's receiver logged 661 warnings in 25 s for 112 CHs while the DSP refused its
token: every CH backed off alone. Here ``--hubs`` CHs wait for their version (N999s in a
fresh SQLite back office) and the DSP fails for ``--seconds`` of the worker's clock (a
virtual one: the worker is stepped from one retry time to the next, as its loop would be,
so the run takes milliseconds and the figures do not depend on the machine):

- **refused token (401)**: a failure of the DSP as a whole, behind the shared back-off;
- **unknown CH (404)**: a failure of each CH of its own, which still backs off per CH --
  the baseline in the same run, the path a refused token took before this issue.

Counted: requests the DSP received and warning lines logged; medians over ``--seeds``
seeds of the back-off's jitter. Figures go to docs/performance.md ("issue 24").
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
from structlog.testing import capture_logs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chfw.core.domain import DeviceId  # noqa: E402
from chfw.shared.db.engine import create_engine_for  # noqa: E402
from chfw.supplier import backoffice  # noqa: E402
from chfw.supplier.facts import AlertFacts  # noqa: E402
from chfw.supplier.lookup import InventoryClient, LookupWorker  # noqa: E402
from chfw.supplier.migrate import upgrade  # noqa: E402

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def record_n999s(url: str, hubs: int) -> list[DeviceId]:
    devices = [DeviceId.from_int(0x001DA10000200000 + n) for n in range(hubs)]
    engine = create_engine_for(url)
    with engine.begin() as conn:
        for n, device in enumerate(devices, start=1):
            facts = AlertFacts(
                response_id=f"90-B3-D5-1F-30-00-00-02:{device}:{n}",
                alert_code="N999",
                schema_version="5.0",
                alert_time=AT,
                device_id=device,
                firmware_version=None,
                counter=n,
                mismatch_alert_code="N64",
            )
            backoffice.record_alert(
                conn, facts, document=b"<n999/>", signer="CN=DSP", digest=f"{n:064x}", now=AT
            )
    engine.dispose()
    return devices


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def failing_for(
    url: str, devices: list[DeviceId], status: int, seconds: float, seed: int
) -> tuple[int, int]:
    """(requests the DSP received, warning lines) while it answers ``status`` for ``seconds``."""
    requests = 0

    def dsp(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        return httpx.Response(status)

    engine = create_engine_for(url)
    clock = Clock()
    client = InventoryClient(
        "https://dsp.test", "chfw_su_bench", transport=httpx.MockTransport(dsp)
    )
    worker = LookupWorker(
        engine, client, sweep_seconds=math.inf, rng=random.Random(seed), clock=clock
    )

    async def run() -> None:
        async with client:
            while clock.now <= seconds:
                await worker.run_once()
                due = min(filter(None, map(worker.retry_at, devices)), default=math.inf)
                clock.now = max(due, clock.now + 1e-6)

    with capture_logs() as logs:
        asyncio.run(run())
    engine.dispose()
    warnings = sum(1 for line in logs if line["log_level"] == "warning")
    return requests, warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hubs", type=int, default=112)
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    results: dict[int, list[tuple[int, int]]] = {401: [], 404: []}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            for status in results:  # interleaved: each seed runs both
                url = f"sqlite:///{Path(folder) / f'bo-{seed}-{status}.db'}"
                upgrade(url)
                devices = record_n999s(url, args.hubs)
                results[status].append(failing_for(url, devices, status, args.seconds, seed))
    print(
        f"{args.hubs} CHs waiting, the DSP failing for {args.seconds:g} s "
        f"(median of {args.seeds} seeds)"
    )
    print("| DSP answers | requests | warning lines |")
    print("|---|---:|---:|")
    medians = {}
    for status, label in (
        (404, "404 to each CH (per-CH back-off)"),
        (401, "401: our token refused (shared back-off)"),
    ):
        requests = statistics.median(r for r, _ in results[status])
        warnings = statistics.median(w for _, w in results[status])
        medians[status] = (requests, warnings)
        print(f"| {label} | {requests:g} | {warnings:g} |")
    print(
        f"ratio per-CH / shared: requests {medians[404][0] / medians[401][0]:.0f} x, "
        f"warning lines {medians[404][1] / max(medians[401][1], 1):.0f} x"
    )


if __name__ == "__main__":
    main()
