"""Issue 22: what the campaign bookkeeping costs the intake per message, in one process.

Run: .venv/bin/python bench/bench_campaign.py [--hubs 5000] [--pairs 3] [--json FILE]

A simulated wave (``chfw.sim``) over an estate of ``--hubs`` CHs goes through
``ActivationService.submit`` in batches of 500 on SQLite, with alerts built and
signed, as the intake does, twice per pair on copies of one database:

- without a campaign (the baseline, measured in the same run);
- with a running campaign over the whole estate, every hub already dispatched
  (the worst case: every outcome settles a hub, updates its phase's counts and
  evaluates the gates).

CPU time of the whole wave per message (this process: SQLite runs in it), interleaved
pairs, the median of each;
the ratio is what the bookkeeping costs. The end-to-end figure (alerts/s, with
and without a campaign) is ``bench_pipeline.py --compare-campaign``. Figures go
to docs/performance.md ("issue 22: campaign bookkeeping").
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog
from tests.small_dsp import SIGNER, Sequential

from chfw.core.clock import utc_now
from chfw.core.domain import FirmwareVersion
from chfw.core.domain.campaign import Gates, PhaseSpec
from chfw.core.duis import bundled_schemas
from chfw.demo.run import seed_hubs
from chfw.dsp.alerts import AlertBuilder
from chfw.dsp.processing import ActivationService
from chfw.dsp.store import campaign_work, campaigns, users
from chfw.dsp.store.migrate import upgrade
from chfw.shared.db.engine import create_engine_for
from chfw.sim import generate_estate, generate_wave
from chfw.sim.wave import DEFAULT_COMMANDER, InventoryStart

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 500


def _template(folder: Path, hubs: int) -> Path:
    """A migrated database with the estate and its Service Users."""
    path = folder / "template.db"
    upgrade(f"sqlite:///{path}")
    engine = create_engine_for(f"sqlite:///{path}")
    synthetic = generate_estate(hubs, 5)
    with engine.begin() as conn:
        seed_hubs(conn, list(synthetic))
        for supplier in synthetic.suppliers:
            users.upsert_user(
                conn,
                users.ServiceUser(
                    user_id=supplier.user_id,
                    name=supplier.name,
                    roles=supplier.roles,
                    duis_version=supplier.duis_version,
                ),
            )
    engine.dispose()
    return path


def _one(
    template: Path,
    folder: Path,
    payloads: list[bytes],
    target: FirmwareVersion,
    with_campaign: bool,
) -> float:
    """Seconds per message for the whole wave through the service."""
    path = folder / f"run-{time.monotonic_ns()}.db"
    shutil.copyfile(template, path)
    engine = create_engine_for(f"sqlite:///{path}")
    if with_campaign:
        with engine.begin() as conn:
            campaigns.create(
                conn,
                "bench",
                target,
                campaigns.cohort_from_estate(conn),
                [PhaseSpec.parse("pilot=5%"), PhaseSpec.parse("rest=rest")],
                Gates(error_threshold=50, min_sample=20, success_threshold=0),
                actor="bench",
                now=utc_now(),
            )
            campaigns.change_state(conn, "bench", "start", actor="bench", now=utc_now())
            while campaign_work.take_work(conn, "bench", "csp", None, 10_000, utc_now()).device_ids:
                pass  # every hub dispatched: every outcome settles one
    builder = AlertBuilder(DEFAULT_COMMANDER, SIGNER, bundled_schemas())
    service = ActivationService(engine, builder, Sequential())
    started, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(payloads), BATCH):
        service.submit(payloads[start : start + BATCH], "csp")
    # CPU, not wall, is compared: the machine is shared; SQLite runs in this process.
    seconds = time.process_time() - started
    print(
        f"campaign={with_campaign} wall {time.perf_counter() - wall:.2f}s cpu {seconds:.2f}s",
        file=sys.stderr,
    )
    if with_campaign:
        with engine.connect() as conn:
            status = campaigns.status(conn, "bench", utc_now()).as_json()
        settled = sum(p["succeeded"] + p["failed"] for p in status["phases"])
        assert settled == sum(p["size"] for p in status["phases"]), status
    engine.dispose()
    path.unlink()
    return seconds / len(payloads)


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hubs", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    wave = generate_wave(
        generate_estate(args.hubs, 5), seed=6, inventory_start=InventoryStart.ESTATE
    )
    payloads = list(wave.payloads())
    runs: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="chfw-bench-campaign-") as tmp:
        folder = Path(tmp)
        template = _template(folder, args.hubs)
        for _ in range(args.pairs):
            for with_campaign in (False, True):
                runs[with_campaign].append(
                    _one(template, folder, payloads, wave.target_version, with_campaign)
                )
    without, with_ = statistics.median(runs[False]), statistics.median(runs[True])
    result = {
        "hubs": args.hubs,
        "messages": len(payloads),
        "cpu_us_per_message_without": [round(s * 1e6, 1) for s in runs[False]],
        "cpu_us_per_message_with": [round(s * 1e6, 1) for s in runs[True]],
        "median_cpu_without_us": round(without * 1e6, 1),
        "median_cpu_with_us": round(with_ * 1e6, 1),
        "ratio": round(with_ / without, 3),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
