"""Run a simulated CH firmware wave through the real services and summarise it.

Everything runs as separate processes talking HTTP on 127.0.0.1, as in
production: the intake (`chfw serve`), delivery worker(s) (`chfw worker`) and
one alert receiver per supplier (`chfw receiver serve`). The simulator plays
the CSPs; its ground truth is checked against what the DSP and the suppliers'
back offices recorded.
"""

from __future__ import annotations

import json
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, FirmwareVersion, UserId
from chfw.demo.campaign import (
    CAMPAIGN_NAME,
    Prepared,
    campaign_summary,
    campaign_work_limit,
    phase_messages,
    start_campaign,
)
from chfw.demo.processes import ServiceGroup, free_port
from chfw.demo.summary import build_summary, print_summary
from chfw.dsp.deployment import create_deployment
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import backlog, csps, estate, users
from chfw.dsp.store.schema import hubs
from chfw.exceptions import ChfwError
from chfw.shared.db.engine import create_engine_for, display_url, reading
from chfw.shared.db.sql import chunked
from chfw.sim.campaign import CampaignRun, run_campaign
from chfw.sim.estate import SimHub, SyntheticEstate, generate_estate
from chfw.sim.poster import PostStats, post_wave
from chfw.sim.wave import InventoryStart, Wave, generate_wave
from chfw.supplier import pilots

SEEDED_AT = datetime(2025, 6, 1, tzinfo=UTC)  # when the estate's starting firmware took effect


class DemoError(ChfwError):
    """The demo could not complete; the message says which step and where its logs are."""


@dataclass(frozen=True)
class DemoOptions:
    hubs: int = 10_000
    seed: int = 0
    workdir: Path | None = None
    database_url: str | None = None
    workers: int = 1
    intakes: int = 1  # intake processes, the CSP's batches spread over them
    target_version: str = "02010300"
    batch_size: int = 500
    drain_timeout: float = 600.0
    sink_receivers: bool = False  # benchmark: endpoints that accept without verifying
    wait: bool = False  # after the summary, keep the services (and dashboards) up until Ctrl-C
    campaign: bool = True  # the CSP takes the wave from a campaign's work list, phase by phase
    single_phase: bool = False  # benchmark: one phase, no gate to wait at (bookkeeping alone)


@dataclass
class Supplier:
    name: str
    user_id: str
    duis_version: str
    port: int
    database_url: str


def run_demo(options: DemoOptions, console: Console) -> dict[str, Any]:
    started = time.monotonic()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="chfw-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    console.print(
        f"[bold]chfw demo[/]: {options.hubs:,} Communications Hubs, work folder {workdir}"
    )

    config_path, settings, _ = create_deployment(
        workdir / "dsp", database_url=options.database_url, force=True
    )
    engine = create_engine_for(settings.database_url)
    synthetic = generate_estate(options.hubs, options.seed)
    target = FirmwareVersion.parse(options.target_version)
    wave = generate_wave(synthetic, target, options.seed, inventory_start=InventoryStart.ESTATE)
    with engine.begin() as conn:
        if estate.count_hubs(conn):
            raise DemoError(
                f"the database {display_url(settings.database_url)} already has an estate; the "
                "demo needs an empty one (its ground truth assumes a fresh deployment)"
            )
    _load_estate(engine, synthetic, console)
    suppliers = _plan_suppliers(synthetic, workdir)
    credential = register_parties(engine, synthetic, suppliers, "demo-csp")

    intake_ports = [free_port() for _ in range(max(1, options.intakes))]
    intake_urls = [f"http://127.0.0.1:{port}" for port in intake_ports]
    intake_url = intake_urls[0]
    with ServiceGroup(workdir / "logs") as services:
        token = secrets.token_urlsafe(24)  # signs in to every dashboard of this run
        services.env["CHFW_DASHBOARD_TOKEN"] = token
        services.env["CHFW_RECEIVER_DASHBOARD_TOKEN"] = token
        for supplier in suppliers:
            if options.sink_receivers:
                services.start(
                    f"sink-{supplier.user_id}",
                    ["--port", str(supplier.port)],
                    health_url=f"http://127.0.0.1:{supplier.port}/healthz",
                    command=[sys.executable, "-m", "chfw.demo.sink"],
                )
                continue
            services.start(
                f"receiver-{supplier.user_id}",
                [
                    "receiver",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(supplier.port),
                    "--trust",
                    str(settings.signing_cert),
                    "--database",
                    supplier.database_url,
                    "--duis-version",
                    supplier.duis_version,
                ],
                health_url=f"http://127.0.0.1:{supplier.port}/healthz",
            )
        for n, (port, url) in enumerate(zip(intake_ports, intake_urls, strict=True)):
            services.start(
                "intake" if len(intake_urls) == 1 else f"intake-{n + 1}",
                [
                    "--config",
                    str(config_path),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                health_url=f"{url}/healthz",
            )
        for n in range(options.workers):
            services.start(f"worker-{n + 1}", ["--config", str(config_path), "worker"])
        services.wait_healthy()
        pilot_db = (
            None if options.sink_receivers else _create_pilot(synthetic, suppliers[0], target)
        )
        console.print(
            f"intake on {', '.join(intake_urls)}, {options.workers} delivery worker(s), "
            f"{len(suppliers)} supplier receivers"
        )

        if options.campaign:  # planned before the wave: not part of its timing
            start_campaign(engine, synthetic, target, single_phase=options.single_phase)
        post_started = time.monotonic()
        stats, run = _post(
            wave, intake_urls, credential, options.batch_size, console, options.campaign
        )
        post_seconds = time.monotonic() - post_started
        services.check_alive()
        drain_seconds = _drain(engine, wave, services, options.drain_timeout, console)
        summary = build_summary(
            engine, wave, [] if options.sink_receivers else suppliers, stats.as_json()
        )
        if run is not None:
            summary["campaign"] = campaign_summary(engine, run)
        if pilot_db is not None:
            summary["pilot"] = _pilot_summary(pilot_db)
        summary["timing"] = {
            "post_seconds": round(post_seconds, 2),
            "drain_seconds_after_post": round(drain_seconds, 2),
            "total_seconds": round(time.monotonic() - started, 2),
            "messages_per_second": (
                round(stats.messages / post_seconds, 1) if post_seconds else None
            ),
        }
        summary["workdir"] = str(workdir)
        print_summary(summary, console)
        if options.wait:
            urls = [("DSP dashboard", f"{intake_url}/dashboard/login#token={token}")]
            if not options.sink_receivers:
                urls += [
                    (
                        f"{s.name} (supplier)",
                        f"http://127.0.0.1:{s.port}/dashboard/login#token={token}",
                    )
                    for s in suppliers
                ]
            _serve_until_interrupted(services, urls, console)
    engine.dispose()
    return summary


def _load_estate(engine: sa.Engine, synthetic: SyntheticEstate, console: Console) -> None:
    """Hubs with their starting firmware, then meter points; batched."""
    with Progress(
        TextColumn("estate"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task("estate", total=len(synthetic))
        for chunk in chunked(synthetic, 5000):
            with engine.begin() as conn:
                seed_hubs(conn, chunk)
            progress.advance(task, len(chunk))


def seed_hubs(conn: sa.Connection, simulated: Sequence[SimHub]) -> None:
    """Simulated CHs at their starting firmware (in effect since SEEDED_AT), then their meters."""
    conn.execute(
        sa.insert(hubs),
        [
            {
                "device_id": hub.device_id.hex,
                "csp_region": hub.csp_region,
                "status": "commissioned",
                "active_firmware": hub.firmware.hex if hub.firmware else None,
                "firmware_changed_at": SEEDED_AT if hub.firmware else None,
                "created_at": SEEDED_AT,
            }
            for hub in simulated
        ],
    )
    estate.upsert_meter_points(
        conn, [(hub.device_id, point) for hub in simulated for point in hub.meter_points]
    )


PILOT_NAME = "demo-wave-pilot"
PILOT_COHORT = 500


def _create_pilot(synthetic: SyntheticEstate, supplier: Supplier, target: FirmwareVersion) -> str:
    """The first supplier pilots the wave on (up to) 500 of its CHs."""
    user = UserId.parse(supplier.user_id)
    cohort = []
    for hub in synthetic:
        if user in hub.responsible_suppliers:
            cohort.append(hub.device_id)
            if len(cohort) == PILOT_COHORT:
                break
    supplier_engine = create_engine_for(supplier.database_url)
    with supplier_engine.begin() as conn:
        pilots.create_pilot(
            conn,
            PILOT_NAME,
            target,
            cohort,
            utc_now(),
            description=f"{supplier.name}: the demo wave on {len(cohort)} of its CHs",
        )
    supplier_engine.dispose()
    return supplier.database_url


def _pilot_summary(database_url: str) -> dict[str, Any]:
    supplier_engine = create_engine_for(database_url)
    with reading(supplier_engine) as conn:
        pilot, figures = pilots.pilot_progress(conn, PILOT_NAME)
    supplier_engine.dispose()
    data = pilots.progress_json(pilot, figures)
    data.pop("series", None)
    return data


def register_parties(
    engine: sa.Engine, synthetic: SyntheticEstate, suppliers: list[Supplier], csp: str
) -> str:
    """Each simulated supplier as a Service User at its local endpoint, and one CSP.

    Returns the CSP's intake credential.
    """
    with engine.begin() as conn:
        credential = csps.add_csp(conn, csp, regions=list(CspRegion))
        for supplier, sim in zip(suppliers, synthetic.suppliers, strict=True):
            users.upsert_user(
                conn,
                users.ServiceUser(
                    user_id=sim.user_id,
                    name=sim.name,
                    roles=sim.roles,
                    duis_version=sim.duis_version,
                    endpoint_url=f"http://127.0.0.1:{supplier.port}/",
                    allow_insecure_http=True,  # local receivers on this host, no TLS
                ),
            )
    return credential


def _plan_suppliers(synthetic: SyntheticEstate, workdir: Path) -> list[Supplier]:
    out = []
    for sim in synthetic.suppliers:
        folder = workdir / "suppliers" / sim.user_id.hex
        folder.mkdir(parents=True, exist_ok=True)
        out.append(
            Supplier(
                name=sim.name,
                user_id=str(sim.user_id),
                duis_version=str(sim.duis_version),
                port=free_port(),
                database_url=f"sqlite:///{folder / 'backoffice.db'}",
            )
        )
    return out


def _post(
    wave: Wave,
    urls: list[str],
    credential: str,
    batch_size: int,
    console: Console,
    campaign: bool,
) -> tuple[PostStats, CampaignRun | None]:
    """The CSP works through the campaign: each phase's hubs from the work list, their
    answers posted to the intake(s); without ``campaign``, the whole wave at once."""
    total = wave.ground_truth.messages
    prepared = _prepared(wave)
    concurrency = 2 * len(urls)  # a batch in hand at each intake while one is answered

    def messages_for(devices: AbstractSet[DeviceId] | None) -> Iterable[str]:
        return phase_messages(wave, prepared, devices)

    with Progress(
        TextColumn("[bold]CSP → intake[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("messages"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("post", total=total)

        def advance(n: int) -> None:
            progress.advance(task, n)

        if not campaign:
            stats = post_wave(
                messages_for(None),
                urls,
                credential,
                batch_size=batch_size,
                concurrency=concurrency,
                progress=advance,
            )
            return stats, None
        run = run_campaign(
            messages_for,
            urls,
            credential,
            CAMPAIGN_NAME,
            work_limit=campaign_work_limit,
            batch_size=batch_size,
            concurrency=concurrency,
            progress=advance,
            on_round=lambda n: console.print(f"campaign {CAMPAIGN_NAME}: {n:,} hubs handed out"),
        )
        return run.stats, run


# Waves up to this many messages are encoded before posting starts (about 30 MB of
# hex), so the timed posting measures the intake rather than the simulator's own
# GBCS encoding on the same CPUs; larger waves are encoded as they are posted.
PREPARE_LIMIT = 200_000


def _prepared(wave: Wave) -> Prepared | None:
    """The wave's messages encoded, if it is small enough (None: encode as posted)."""
    if wave.ground_truth.messages > PREPARE_LIMIT:
        return None
    return [(m.activation.hub.device_id, m.data.hex()) for m in wave.messages()]


def _drain(
    engine: sa.Engine, wave: Wave, services: ServiceGroup, timeout: float, console: Console
) -> float:
    """Wait until no alert is pending (delivered or dead); returns the seconds waited.

    Polls only the pending rows (an index range that shrinks as the wave drains):
    counting every state scans the whole outbox, documents and all, and on
    PostgreSQL that took ~145 ms of the server's CPU twice a second while the
    workers it measures were still delivering. Progress is the wave's expected
    alerts less those pending; the summary counts them exactly afterwards.
    """
    expected = sum(wave.ground_truth.alerts.values())
    started = time.monotonic()
    with Progress(
        TextColumn("[bold]outbox → suppliers[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("alerts"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("drain", total=expected)
        while True:
            with reading(engine) as conn:
                pending = backlog.pending(conn)
            progress.update(task, completed=max(0, expected - pending))
            if pending == 0:
                return time.monotonic() - started
            services.check_alive()
            if time.monotonic() - started > timeout:
                raise DemoError(
                    f"the outbox did not drain within {timeout:.0f}s "
                    f"({pending} pending); see the worker logs in {services.log_dir}"
                )
            time.sleep(0.5)


def _serve_until_interrupted(
    services: ServiceGroup, urls: list[tuple[str, str]], console: Console
) -> None:
    """Print the dashboards' sign-in links and keep every service up until Ctrl-C."""
    console.print("\n[bold]Dashboards[/] (each link signs you in; its token is for this run only):")
    for label, url in urls:
        console.print(f"  {label}: {url}", soft_wrap=True, highlight=False)
    console.print("The services keep running: press [bold]Ctrl-C[/] to stop them.")

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)  # `kill` stops them cleanly too
    try:
        while True:
            services.check_alive()
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping the services ...")
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_summary(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
