"""Issue 22 items 5 and 7: what the catch-up feed costs, in one process, on SQLite.

Run: .venv/bin/python bench/bench_feed.py [--hubs 20000] [--pairs 3] [--json FILE]

1. **Estate import.** ``--hubs`` CHs, one meter point each, four suppliers, imported
   by ``estate.import_records`` in batches of 5,000 (as ``chfw estate import`` does)
   into a fresh migrated database, then imported again with every MPAN moved to
   another supplier (a change of supplier for the whole estate). Each twice per pair:
   as shipped (gains recorded), and with the gain hook's functions replaced by
   no-ops (the baseline, in the same run). CPU time, median of the pairs.
2. **Feed.** One history row per CH (a wave's activations, written in bulk), then
   one supplier reads its whole feed in pages of 500 through ``feed.sequence`` and
   ``feed.read``, as ``GET /su/v1/firmware`` does: entries per second, and what
   numbering the rows cost of it.

Figures go to docs/performance.md ("issue 22: the catch-up feed").
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chfw.core.domain import DeviceId, Fuel, MeterPoint, UserId  # noqa: E402
from chfw.dsp.estate_file import CspRegion, EstateRecord  # noqa: E402
from chfw.dsp.store import estate, feed  # noqa: E402
from chfw.dsp.store.migrate import upgrade  # noqa: E402
from chfw.dsp.store.schema import firmware_history  # noqa: E402
from chfw.shared.db.engine import create_engine_for  # noqa: E402

BATCH = 5000
PAGE = 500
AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SUPPLIERS = [UserId.parse(f"90-B3-D5-1F-30-01-00-0{n}") for n in range(4)]


def records(hubs: int, shift: int) -> list[EstateRecord]:
    out = []
    for n in range(hubs):
        supplier = SUPPLIERS[(n + shift) % len(SUPPLIERS)]
        point = MeterPoint(f"{3_000_000_000_000 + n:013d}", Fuel.ELECTRICITY, supplier)
        out.append(EstateRecord(DeviceId.from_int(0x001DA10000100000 + n), CspRegion.NORTH, point))
    return out


@contextmanager
def without_gains() -> Any:
    """The baseline: the hook's three functions as no-ops (never in chfw itself)."""
    saved = feed.holders, feed.devices_of_points, feed.record_gains
    feed.holders = lambda conn, devices: set()  # type: ignore[assignment]
    feed.devices_of_points = lambda conn, points: set()  # type: ignore[assignment]
    feed.record_gains = lambda conn, before, devices, at: 0  # type: ignore[assignment]
    try:
        yield
    finally:
        feed.holders, feed.devices_of_points, feed.record_gains = saved


def import_twice(template: Path, folder: Path, hubs: int, baseline: bool) -> tuple[float, float]:
    """CPU seconds of the first import and of the change of supplier."""
    path = folder / f"run-{time.monotonic_ns()}.db"
    shutil.copyfile(template, path)
    engine = create_engine_for(f"sqlite:///{path}")
    times = []
    with without_gains() if baseline else contextmanager(lambda: (yield))():
        for shift in (0, 1):
            rows = records(hubs, shift)
            started = time.process_time()
            for start in range(0, hubs, BATCH):
                with engine.begin() as conn:
                    estate.import_records(conn, rows[start : start + BATCH], AT)
            times.append(time.process_time() - started)
    engine.dispose()
    path.unlink()
    return times[0], times[1]


def read_feed(template: Path, folder: Path, hubs: int) -> dict[str, float]:
    path = folder / "feed.db"
    shutil.copyfile(template, path)
    engine = create_engine_for(f"sqlite:///{path}")
    for shift in (0, 1):
        for start in range(0, hubs, BATCH):
            with engine.begin() as conn:
                estate.import_records(conn, records(hubs, shift)[start : start + BATCH], AT)
    history = [
        {
            "device_id": DeviceId.from_int(0x001DA10000100000 + n).hex,
            "originator_counter": str(n),
            "event": "outcome",
            "source": "response",
            "result": "success",
            "decision": "new_version",
            "reported_version": "02010400",
            "version_after": "02010400",
            "occurred_at": AT,
            "recorded_at": AT,
        }
        for n in range(hubs)
    ]
    with engine.begin() as conn:
        conn.execute(firmware_history.insert(), history)
    started = time.process_time()
    with engine.begin() as conn:
        end = feed.sequence(conn)
    numbering = time.process_time() - started
    entries, after = 0, 0
    started = time.process_time()
    while True:
        with engine.begin() as conn:
            end = feed.sequence(conn)
        with engine.connect() as conn:
            page = feed.read(conn, SUPPLIERS[1], after, end, PAGE)
        entries += len(page.changes)
        after = page.last
        if not page.changes:
            break
    reading = time.process_time() - started
    engine.dispose()
    return {
        "entries": entries,
        "numbered_rows": end - 1,
        "numbering_us_per_row": numbering / (end - 1) * 1e6,
        "read_entries_per_s": entries / reading,
    }


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hubs", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="chfw-bench-feed-") as tmp:
        folder = Path(tmp)
        template = folder / "template.db"
        upgrade(f"sqlite:///{template}")
        for _ in range(args.pairs):
            for baseline in (True, False):
                runs[baseline].append(import_twice(template, folder, args.hubs, baseline))
        feed_figures = read_feed(template, folder, args.hubs)
    result: dict[str, object] = {
        "hubs": args.hubs,
        "pairs": args.pairs,
        "python": platform.python_version(),
    }
    for label, index in (("first_import", 0), ("change_of_supplier", 1)):
        base = statistics.median(r[index] for r in runs[True])
        shipped = statistics.median(r[index] for r in runs[False])
        result[label] = {
            "baseline_us_per_row": base / args.hubs * 1e6,
            "with_gains_us_per_row": shipped / args.hubs * 1e6,
            "ratio": shipped / base,
        }
    result["feed"] = feed_figures
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
