"""`chfw simulate`: a synthetic estate and a CSP posting a firmware wave to the intake."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from chfw.cli._context import fail, run_guarded
from chfw.cli._output import console
from chfw.core.clock import utc_now
from chfw.core.domain import FirmwareVersion
from chfw.exceptions import InvalidValueError
from chfw.sim import (
    DEFAULT_TARGET,
    GroundTruth,
    InventoryStart,
    PostStats,
    Wave,
    generate_estate,
    generate_wave,
    post_wave,
    simulator_device_key,
    write_estate_csv,
    write_estate_json,
    write_suppliers_json,
)
from chfw.sim.campaign import run_campaign

app = typer.Typer(
    help="Simulate an estate and a CSP sending CS06 answers for a firmware wave.",
    no_args_is_help=True,
)

HubsOpt = Annotated[int, typer.Option("--hubs", help="Communications Hubs in the estate", min=0)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Estate seed: same seed, same estate")]
ProgressOpt = Annotated[bool, typer.Option(help="Show a progress bar")]


def _bar(description: str, disable: bool) -> Progress:
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=disable,
    )


@app.command()
def estate(
    hubs: HubsOpt,
    out: Annotated[Path, typer.Option("--out", help="Folder to write into", file_okay=False)],
    seed: SeedOpt = 0,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    progress: ProgressOpt = True,
) -> None:
    """Write OUT/estate.csv (or .json) for `chfw estate import` and OUT/suppliers.json."""
    if fmt not in ("csv", "json"):
        raise fail(f"--format must be csv or json, not {fmt!r}")
    with run_guarded():
        synthetic = generate_estate(hubs, seed)
    try:
        out.mkdir(parents=True, exist_ok=True)
        estate_path = out / f"estate.{fmt}"
        suppliers_path = out / "suppliers.json"
        started = time.perf_counter()
        with _bar("writing estate", not progress) as bar, estate_path.open("w", newline="") as f:
            task = bar.add_task("estate", total=hubs)

            def advance(done: int) -> None:
                bar.advance(task, done)

            writer = write_estate_csv if fmt == "csv" else write_estate_json
            written = writer(synthetic, f, advance)
        elapsed = time.perf_counter() - started
        with suppliers_path.open("w") as f:
            write_suppliers_json(synthetic, f)
    except OSError as exc:
        raise fail(f"cannot write into {out}: {exc.strerror or exc}") from None
    unit = "rows" if fmt == "csv" else "hubs"
    speed = f" ({hubs / elapsed:,.0f} hubs/s)" if elapsed > 0 and hubs else ""
    typer.echo(f"wrote {estate_path}: {hubs} CH(s), {written} {unit}{speed}")
    typer.echo(f"wrote {suppliers_path}: {len(synthetic.suppliers)} Service User(s)")


def _target(text: str) -> FirmwareVersion:
    try:
        return FirmwareVersion.parse(text)
    except InvalidValueError as exc:
        raise fail(f"--target-version: {exc}") from None


def _scheduled(text: str | None) -> datetime:
    if text is None:
        return utc_now().replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--scheduled-at {text!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=0)


@app.command()
def wave(
    hubs: HubsOpt,
    seed: SeedOpt = 0,
    url: Annotated[
        list[str] | None,
        typer.Option(
            help="Intake base URL, e.g. http://127.0.0.1:8064; repeat it for several intake "
            "instances (the senders are spread over them)"
        ),
    ] = None,
    credential: Annotated[
        str | None,
        typer.Option(
            envvar="CHFW_CSP_CREDENTIAL",
            help="CSP credential (from `chfw csp add`); or $CHFW_CSP_CREDENTIAL",
            show_default=False,
        ),
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle",
            help="CA certificate(s) (PEM) to verify an https:// intake (default: the system's)",
            dir_okay=False,
        ),
    ] = None,
    target_version: Annotated[
        str, typer.Option(help="Firmware version the wave activates (hex)")
    ] = DEFAULT_TARGET.hex,
    wave_seed: Annotated[
        int | None, typer.Option(help="Seed of the wave (default: --seed); vary it for a new wave")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Messages per batch POST", min=1)] = 500,
    concurrency: Annotated[int, typer.Option(help="Batches in flight", min=1)] = 4,
    rate: Annotated[
        float | None, typer.Option(help="Target messages/s (default: as fast as possible)")
    ] = None,
    signed: Annotated[
        bool, typer.Option(help="Sign every message with the simulator's device key")
    ] = False,
    inventory_start: Annotated[
        InventoryStart,
        typer.Option(help="What the inventory holds before the wave, for the ground truth"),
    ] = InventoryStart.EMPTY,
    scheduled_at: Annotated[
        str | None,
        typer.Option(help="When future-dated activations execute, ISO 8601 (default: now)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Build and count the wave without posting it")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    progress: ProgressOpt = True,
    campaign: Annotated[
        str | None,
        typer.Option(
            help="Take the hubs from this DCC campaign's work list, phase by phase, and post "
            "only theirs (docs/campaigns.md)"
        ),
    ] = None,
) -> None:
    """Post the CS06 answers of a firmware wave over the estate of --hubs/--seed to the intake.

    The estate is rebuilt from the seed, so it is the one `chfw simulate
    estate` wrote. Prints what the intake answered beside the ground truth
    (what a fresh deployment must answer); exits 1 when messages could not be
    delivered to the intake.
    """
    if not dry_run and (not url or credential is None):
        raise fail("give --url and --credential (or $CHFW_CSP_CREDENTIAL), or use --dry-run")
    target = _target(target_version)
    with run_guarded():
        synthetic = generate_estate(hubs, seed)
        the_wave = generate_wave(
            synthetic,
            target,
            seed if wave_seed is None else wave_seed,
            inventory_start=inventory_start,
            scheduled_at=_scheduled(scheduled_at),
            device_key=simulator_device_key(seed) if signed else None,
        )
        truth = the_wave.ground_truth
    stats: PostStats | None = None
    started = time.perf_counter()
    quiet = not progress or as_json
    if dry_run:
        with _bar("encoding", quiet) as bar:
            task = bar.add_task("encode", total=truth.messages)
            for count, _ in enumerate(the_wave.payloads(), start=1):
                if count % 1000 == 0:
                    bar.advance(task, 1000)
            bar.update(task, completed=truth.messages)
    else:
        assert url is not None
        assert credential is not None
        with _bar("posting", quiet) as bar:
            task = bar.add_task("post", total=truth.messages)

            def advance(done: int) -> None:
                bar.advance(task, done)

            with run_guarded():
                ca = None if ca_bundle is None else str(ca_bundle)
                if campaign is not None:
                    stats = run_campaign(
                        lambda devices: the_wave.payloads(only=devices),
                        url,
                        credential,
                        campaign,
                        batch_size=batch_size,
                        concurrency=concurrency,
                        progress=advance,
                        ca_bundle=ca,
                    ).stats
                else:
                    stats = post_wave(
                        the_wave.payloads(),
                        url,
                        credential,
                        batch_size=batch_size,
                        concurrency=concurrency,
                        rate=rate,
                        progress=advance,
                        ca_bundle=ca,
                    )
    elapsed = time.perf_counter() - started
    if as_json:
        typer.echo(json.dumps(_report(the_wave, truth, stats, elapsed), indent=2))
    else:
        _print(the_wave, truth, stats, elapsed)
    if stats is not None and stats.failed_messages:
        raise typer.Exit(1)


def _report(
    the_wave: Wave, truth: GroundTruth, stats: PostStats | None, elapsed: float
) -> dict[str, Any]:
    return {
        "hubs": len(the_wave.estate),
        "seed": the_wave.estate.seed,
        "wave_seed": the_wave.seed,
        "signed": the_wave.device_key is not None,
        "scheduled_at": the_wave.scheduled_at.isoformat(),
        "elapsed_seconds": round(elapsed, 3),
        "posted": None if stats is None else stats.as_json(),
        "ground_truth": truth.as_json(),
    }


def _print(the_wave: Wave, truth: GroundTruth, stats: PostStats | None, elapsed: float) -> None:
    out = console()
    rate = truth.messages / elapsed if elapsed > 0 else 0.0
    verb = "encoded" if stats is None else "posted"
    out.print(
        f"{the_wave!r}: {truth.messages} message(s) {verb} in {elapsed:.1f} s ({rate:,.0f}/s)"
    )
    table = Table(title="intake answers vs ground truth")
    table.add_column("count")
    table.add_column("expected", justify="right")
    if stats is not None:
        table.add_column("answered", justify="right")
    sections = (
        ("status", truth.statuses, None if stats is None else stats.statuses),
        ("decision", truth.decisions, None if stats is None else stats.decisions),
        ("alerts", truth.alerts, None if stats is None else stats.alerts),
    )
    for section, expected, answered in sections:
        for name, count in expected.items():
            cells = [f"{section} {name}", str(count)]
            if answered is not None:
                cells.append(str(answered.get(name, 0)))
            table.add_row(*cells)
    out.print(table)
    recipients = Table(title="expected alerts per recipient")
    recipients.add_column("User ID")
    recipients.add_column("N64", justify="right")
    recipients.add_column("N999", justify="right")
    for user, counts in truth.alerts_by_recipient.items():
        recipients.add_row(user, str(counts["N64"]), str(counts["N999"]))
    out.print(recipients)
    distribution = ", ".join(
        f"{version or 'none'}: {count}" for version, count in truth.firmware_distribution.items()
    )
    out.print(f"expected firmware distribution: {distribution}")
    if stats is not None:
        out.print(
            f"batches {stats.batches}, retries {stats.retries}, failed messages "
            f"{stats.failed_messages}"
            + (f" (last error: {stats.last_error})" if stats.failed_messages else "")
        )
