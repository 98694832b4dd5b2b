"""Issue 20: what the order of events and loud conflicts cost the intake per message.

Run: .venv/bin/python bench/bench_ordering.py [--messages 500] [--json FILE]

Per message, in one process (best of 7 rounds each):

- baseline: decoding the CS06 response (``decode_outcome``), the intake's cheapest step;
- what issue 20 items 2 and 4 add to deciding it: the content digest (identity with
  the sender, conflicts), clamping the hub's time, placing it against the hub's newest
  report (``decide`` with a ``Report``), against ``decide`` without one;
- the whole batch through ``ActivationService.submit`` on SQLite (decide, record
  history and the hub's state, build and sign alerts), per message.

Figures go to docs/performance.md ("issue 20: ordering and conflicts"), as ratios to the
baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import structlog

from _timing import per_call_seconds
from chfw.core.domain import ActivationResult, Eui64, FirmwareVersion, clamp, decide, report_of
from chfw.core.gbcs import decode_outcome, encode_response
from chfw.dsp.processing import content_digest
from chfw.dsp.store.migrate import upgrade
from chfw.shared.db.engine import create_engine_for

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENDER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)
V1, V2 = FirmwareVersion.parse("02010300"), FirmwareVersion.parse("02010400")


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=500, help="messages per batch")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # One log line per message at debug would be most of what is measured.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    from tests.small_dsp import CH1, build_dsp

    message = encode_response(
        device_id=CH1,
        recipient=SENDER,
        counter=7,
        result=ActivationResult.SUCCESS,
        firmware_version=V2,
        date_time=datetime(2026, 12, 7, 8, tzinfo=UTC),
    )
    outcome = decode_outcome(message)
    latest = report_of(decode_outcome(message))
    stages = {
        "decode_outcome (baseline)": lambda: decode_outcome(message),
        "content_digest": lambda: content_digest(outcome),
        "clamp": lambda: clamp(outcome.occurred_at, NOW),
        "decide, no report": lambda: decide(outcome, V1),
        "decide against the newest report": lambda: decide(outcome, V1, latest),
    }
    per_call = {name: per_call_seconds(fn) for name, fn in stages.items()}
    baseline = per_call["decode_outcome (baseline)"]

    with tempfile.TemporaryDirectory(prefix="chfw-bench-ordering-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'chfw.db'}"
        upgrade(url)
        engine = create_engine_for(url)
        dsp = build_dsp(engine)
        counter = iter(range(1, 10**9))

        def batch() -> None:
            dsp.service.submit(
                [
                    encode_response(
                        device_id=CH1,
                        recipient=SENDER,
                        counter=next(counter),
                        result=ActivationResult.SUCCESS,
                        firmware_version=V1 if n % 2 else V2,
                    )
                    for n in range(args.messages)
                ],
                "north",
            )

        submit = per_call_seconds(batch, rounds=5, min_time=0.5) / args.messages
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM firmware_history")).scalar()
        engine.dispose()
    per_call["submit, per message (SQLite, one CH, every message a new version)"] = submit
    added = (
        per_call["content_digest"]
        + per_call["clamp"]
        + per_call["decide against the newest report"]
        - per_call["decide, no report"]
    )
    result = {
        "per_call_us": {name: seconds * 1e6 for name, seconds in per_call.items()},
        "ratio_to_baseline": {name: seconds / baseline for name, seconds in per_call.items()},
        "added_per_message_us": added * 1e6,
        "added_share_of_submit": added / submit,
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    print(f"{'per message':62} {'µs':>9} {'× decode':>9}")
    for name, seconds in per_call.items():
        print(f"  {name:60} {seconds * 1e6:9.2f} {seconds / baseline:9.2f}")
    print(
        f"added by ordering and conflicts: {added * 1e6:.2f} µs per message, "
        f"{100 * added / submit:.1f} % of submit"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
