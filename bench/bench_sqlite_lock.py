"""Waiting for SQLite's write lock: SQLite's busy handler against chfw's begin_immediate.

One process plays the intake: it holds the write lock for 200 ms (a batch being
processed), lets go for 10 ms (the next batch arriving), and again. Another
plays a delivery worker: short write transactions as fast as it can get the
lock. Both runs in the same invocation, so the ratio holds on a noisy machine.

Run: .venv/bin/python bench/bench_sqlite_lock.py [--seconds 6]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sqlite3
import tempfile
import time
from pathlib import Path

from chfw.shared.db.engine import BUSY_TIMEOUT_SECONDS, begin_immediate

HOLD_SECONDS = 0.2
GAP_SECONDS = 0.01


def _holder(path: str, stop_at: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
    while time.time() < stop_at:
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(HOLD_SECONDS)
        conn.execute("COMMIT")
        time.sleep(GAP_SECONDS)


def run(mode: str, seconds: float, folder: Path) -> dict[str, float]:
    path = str(folder / f"{mode}.db")
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x INTEGER)")
    stop_at = time.time() + seconds
    holder = multiprocessing.Process(target=_holder, args=(path, stop_at))
    holder.start()
    time.sleep(0.1)
    waits: list[float] = []
    while time.time() < stop_at - 0.3:
        started = time.perf_counter()
        if mode == "sqlite busy handler":
            conn.execute("BEGIN IMMEDIATE")
        else:
            begin_immediate(conn)
        waits.append(time.perf_counter() - started)
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("COMMIT")
        time.sleep(0.005)
    holder.join()
    waits.sort()
    return {
        "transactions": len(waits),
        "mean_wait_ms": round(sum(waits) / len(waits) * 1000, 1),
        "max_wait_ms": round(waits[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {
            mode: run(mode, args.seconds, Path(folder))
            for mode in ("sqlite busy handler", "chfw begin_immediate")
        }
    results["ratio_transactions"] = round(
        results["chfw begin_immediate"]["transactions"]
        / max(1, results["sqlite busy handler"]["transactions"]),
        2,
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
