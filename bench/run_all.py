"""Run every benchmark once (`make bench`), each writing JSON into bench/results/.

PostgreSQL runs need CHFW_BENCH_DATABASE_URL=<server URL of an empty database per run>;
without it only SQLite is measured. Figures go into docs/performance.md by hand,
with the machine's load noted: these are 2-core shared machines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

RUNS = [
    ("core", ["bench_core.py"]),
    ("receiver", ["bench_receiver.py"]),
    ("pipeline-sqlite-sink", ["bench_pipeline.py", "--hubs", "20000", "--sink"]),
    ("pipeline-sqlite-receivers", ["bench_pipeline.py", "--hubs", "10000"]),
    ("backlog-sqlite", ["bench_backlog.py", "--alerts", "200000"]),
    ("archive-sqlite", ["bench_archive.py", "--alerts", "200000"]),
    ("transports", ["bench_transports.py"]),  # aiohttp's case only when it is installed
    ("feed-sqlite", ["bench_feed.py", "--hubs", "20000"]),
]


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for name, args in RUNS:
        out = RESULTS / f"{name}.json"
        print(f"== {name}", flush=True)
        run = subprocess.run(
            [sys.executable, str(HERE / args[0]), *args[1:], "--json", str(out)], check=False
        )
        failed += run.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
