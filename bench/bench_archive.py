"""Issue 5: what old delivered rows cost the outbox's readers, and how fast archiving removes them.

Fills the outbox with N delivered alerts (one real signed N64 document, one
attempt each, delivered a week ago), times the reads that dashboards and
/metrics make (best of 3 each), archives everything delivered more than a day
ago (`chfw.dsp.store.archive.archive_delivered`, as `chfw outbox archive` does),
and times the same reads again. The baseline of each read is itself on an
outbox without the old rows, in the same run.

Run: .venv/bin/python bench/bench_archive.py [--alerts 200000] [--database-url URL] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bench_backlog import fill
from chfw.dsp.store import archive, outbox, stats
from chfw.dsp.store.migrate import upgrade
from chfw.dsp.store.schema import delivery_attempts
from chfw.dsp.store.schema import outbox as outbox_table
from chfw.shared.db.engine import create_engine_for

READS: dict[str, Callable[[Connection, datetime], object]] = {
    "outbox.counts (dashboard)": lambda conn, now: outbox.counts(conn),
    "outbox.counts_by (metrics)": lambda conn, now: outbox.counts_by(conn),
    "stats.delivery_health (dashboard)": stats.delivery_health,
    "stats.recent_latencies (metrics)": stats.recent_latencies,
    "stats.attempts_by_outcome (metrics)": lambda conn, now: stats.attempts_by_outcome(conn),
}


def timed_reads(engine: sa.Engine, now: datetime) -> dict[str, float]:
    """Seconds per read, best of 3."""
    out: dict[str, float] = {}
    with engine.connect() as conn:
        for name, read in READS.items():
            best = float("inf")
            for _ in range(3):
                began = time.perf_counter()
                read(conn, now)
                best = min(best, time.perf_counter() - began)
            out[name] = round(best, 4)
    return out


def deliver_all(engine: sa.Engine, at: datetime) -> None:
    """Every row delivered at ``at`` with one attempt, as a worker's settle leaves them."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(delivery_attempts).from_select(
                ["outbox_id", "attempted_at", "outcome", "status_code", "duration_ms"],
                sa.select(
                    outbox_table.c.id,
                    sa.literal(at, delivery_attempts.c.attempted_at.type),
                    sa.literal("delivered"),
                    sa.literal(204),
                    sa.literal(5.0),
                ),
            )
        )
        conn.execute(
            sa.update(outbox_table).values(
                state="delivered", attempts=1, delivered_at=at, next_attempt_at=at
            )
        )
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE outbox")
            conn.exec_driver_sql("ANALYZE delivery_attempts")


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=200_000)
    parser.add_argument("--database-url")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'archive.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    now = datetime.now(UTC)
    fill(engine, args.alerts, 0)
    deliver_all(engine, now - timedelta(days=7))
    with_old_rows = timed_reads(engine, now)
    began = time.perf_counter()
    moved = archive.archive_delivered(engine, now - timedelta(days=1), now, actor="bench")
    seconds = time.perf_counter() - began
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE outbox")
            conn.exec_driver_sql("VACUUM ANALYZE delivery_attempts")
    archived = timed_reads(engine, now)
    engine.dispose()
    result: dict[str, Any] = {
        "backend": engine.dialect.name,
        "alerts": args.alerts,
        "archive_seconds": round(seconds, 1),
        "archived_alerts": moved.alerts,
        "archived_per_second": round(moved.alerts / seconds, 1),
        "reads_seconds_with_old_rows": with_old_rows,
        "reads_seconds_after_archive": archived,
        "read_ratio_with_old_rows_over_after": {
            name: round(with_old_rows[name] / max(archived[name], 1e-6), 1) for name in READS
        },
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
