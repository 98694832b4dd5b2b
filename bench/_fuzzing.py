"""The libFuzzer plumbing the atheris harnesses (fuzz_gbcs.py, fuzz_receiver.py) share.

libFuzzer ends its process when it is done, so each harness runs itself again as a
child (``script --child WORK -- ARGS``), reads libFuzzer's final statistics from
the child's stderr and the crashes the target wrote to ``WORK/crashes.jsonl``,
replays the final corpus under coverage.py in a third process, and writes a
section of docs/reliability.md. That plumbing, and the command line around it,
was copied from one harness to the next; kept here once, both reports count
inputs, crashes and coverage the same way. The targets, seeds and report text
stay in each harness.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import coverage

# libFuzzer's progress lines: "#1048576 DONE cov: 812 ft: 2903 corp: 401/9876b ... exec/s: 12345"
_STATS = re.compile(
    r"#(?P<runs>\d+)\s+(?P<event>\w+)\s+cov: (?P<cov>\d+) ft: (?P<ft>\d+) "
    r"corp: (?P<corp>\d+)/(?P<corp_size>\S+).*?exec/s: (?P<execs>\d+)"
)


@dataclass(frozen=True)
class FuzzerRun:
    """libFuzzer's final statistics and the crashes the target logged."""

    inputs: int
    seconds: float
    crashes: int
    crash_kinds: list[str]
    edges_covered: int
    features: int
    corpus_inputs: int
    corpus_size: str

    def figures(self) -> dict[str, Any]:
        """The figures every harness reports, in the order of its JSON."""
        return {
            "inputs": self.inputs,
            "seconds": round(self.seconds, 1),
            "inputs_per_second": round(self.inputs / self.seconds),
            "crashes": self.crashes,
            "crash_kinds": self.crash_kinds,
            "edges_covered": self.edges_covered,
            "features": self.features,
            "corpus_inputs": self.corpus_inputs,
            "corpus_size": self.corpus_size,
        }


def run_fuzzer(
    script: str,
    work: Path,
    *,
    runs: int,
    max_len: int,
    folders: Sequence[Path],
    options: Sequence[str] = (),
) -> FuzzerRun:
    """Run ``script --child WORK -- <libFuzzer args>`` and read what it leaves in WORK.

    The child's stderr is kept in WORK/fuzzer.log. A child that exits non-zero
    (libFuzzer's own crash, e.g. an uncaught error in the harness, ends the run
    early) counts as one more crash, ``fuzzer exited N``.
    """
    args = [
        f"-runs={runs}",
        f"-max_len={max_len}",
        *options,
        "-print_final_stats=1",
        "-rss_limit_mb=4096",
        "-timeout=10",
        *map(str, folders),
    ]
    command = [sys.executable, script, "--child", str(work), "--", *args]
    started = time.perf_counter()
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    (work / "fuzzer.log").write_text(child.stderr)
    stats = [m.groupdict() for m in _STATS.finditer(child.stderr)]
    if not stats:
        sys.stderr.write(child.stderr[-4000:])
        raise SystemExit(f"the fuzzer did not report statistics (exit {child.returncode})")
    last = stats[-1]
    crash_log = work / "crashes.jsonl"
    crashes = crash_log.read_text().splitlines() if crash_log.exists() else []
    kinds = sorted({json.loads(line)["error"] for line in crashes})
    if child.returncode != 0:
        kinds.append(f"fuzzer exited {child.returncode}")
    return FuzzerRun(
        inputs=int(last["runs"]),
        seconds=seconds,
        crashes=len(crashes) + (1 if child.returncode != 0 else 0),
        crash_kinds=kinds,
        edges_covered=int(last["cov"]),
        features=int(last["ft"]),
        corpus_inputs=int(last["corp"]),
        corpus_size=last["corp_size"],
    )


def print_coverage(cov: coverage.Coverage, report: Path, omit: list[str] | None = None) -> None:
    """In the replay child: print line and branch coverage, hit and total, as one JSON line."""
    cov.json_report(outfile=str(report), omit=omit)
    totals = json.loads(report.read_text())["totals"]
    print(
        json.dumps(
            {
                "lines": [totals["covered_lines"], totals["num_statements"]],
                "branches": [totals["covered_branches"], totals["num_branches"]],
            }
        )
    )


def measure_coverage(script: str, *args: Path) -> dict[str, list[int]]:
    """Run ``script --replay ARGS``, a child that calls :func:`print_coverage`; read its figures."""
    replay = subprocess.run(
        [sys.executable, script, "--replay", *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
    )
    covered: dict[str, list[int]] = json.loads(replay.stdout.strip().splitlines()[-1])
    return covered


def run_on() -> dict[str, str]:
    """Where and when the figures were taken: the last entries of every harness's JSON."""
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "date": datetime.now(UTC).date().isoformat(),
    }


def ratio(pair: Sequence[int]) -> str:
    hit, total = pair
    return f"{hit} of {total} ({100 * hit / max(total, 1):.0f}%)"


def write_section(docs: Path, heading: str, text: str) -> None:
    """Replace the section under ``heading`` in ``docs`` (appending it, or creating the file)."""
    if docs.exists():
        current = docs.read_text()
    else:
        current = (
            "# Reliability\n\nFigures from the long runs that do not fit in `make test`; each "
            "section is written by the script it names.\n"
        )
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    docs.write_text(updated.rstrip("\n") + "\n")


def keep_crashes(work: Path, kept: Path) -> None:
    """Copy the run's crash log out of its (temporary) work folder, if there is one."""
    crash_log = work / "crashes.jsonl"
    if crash_log.exists():
        kept.write_text(crash_log.read_text())
        print(f"crashing inputs kept in {kept}", file=sys.stderr)


def command_line(
    description: str,
    *,
    max_len: int,
    run: Callable[[int, int, Path], dict[str, Any]],
    child: Callable[[Path, list[str]], None],
    section: Callable[[dict[str, Any]], str],
    docs: Path,
    heading: str,
    work_prefix: str,
    kept: Path,
) -> NoReturn:
    """The harness's command line, as the parent or as the child :func:`run_fuzzer` starts.

    The child (``--child WORK -- ARGS``) is ``child(WORK, ARGS)``. The parent runs
    ``run(runs, max_len, work)`` in a temporary work folder and prints the figures;
    also writes them to ``--json`` and, unless ``--no-docs``, ``section(figures)``
    under ``heading`` in ``docs``. Exits 1 if anything crashed, the crash log kept
    in ``kept``.
    """
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        separator = sys.argv.index("--")
        child(Path(sys.argv[2]), sys.argv[separator + 1 :])
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs to run")
    parser.add_argument("--max-len", type=int, default=max_len, help="longest input (bytes)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/reliability.md")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix=work_prefix) as folder:
        result = run(args.runs, args.max_len, Path(folder))
        keep_crashes(Path(folder), kept)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_docs:
        write_section(docs, heading, section(result))
    raise SystemExit(1 if result["crashes"] else 0)
