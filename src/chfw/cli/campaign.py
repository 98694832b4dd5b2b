"""`chfw campaign`: the DCC's firmware campaigns -- phases of a cohort, gates, pause/resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chfw.cli._context import fail, run_guarded
from chfw.cli._output import console
from chfw.cli._store import transaction
from chfw.cli.pilot import read_cohort_file
from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.core.domain.campaign import Gates, PhaseSpec
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import audit, campaigns

app = typer.Typer(
    help="Firmware campaigns: a target version, a cohort in phases, gates that pause.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Campaign name, e.g. ch-fw-2.1.4")]


def _cohort(
    path: Path | None, regions: list[CspRegion], current: str | None
) -> list[DeviceId] | None:
    """The cohort from the file (every line must name a CH), or None: from the estate."""
    if path is None:
        return None
    if regions or current:
        raise fail("give --cohort FILE or the filters --region/--current-version, not both")
    members = read_cohort_file(path)
    if members.rejects:
        first = members.rejects[0]
        raise fail(
            f"{path}:{first.line}: {first.text!r} is not a Device ID ({first.reason}); "
            f"{len(members.rejects)} line(s) rejected, no campaign created"
        )
    return list(members.device_ids)


@app.command()
def create(
    name: NameArg,
    target_version: Annotated[
        str, typer.Option("--target-version", help="Firmware version the campaign activates (hex)")
    ],
    phase: Annotated[
        list[str],
        typer.Option(
            "--phase",
            help="LABEL=SIZE, in order; SIZE a count (20), a share (10%) or 'rest'",
        ),
    ],
    cohort: Annotated[
        Path | None,
        typer.Option("--cohort", help="CSV with a device_id column, or one Device ID per line"),
    ] = None,
    region: Annotated[
        list[CspRegion] | None,
        typer.Option("--region", help="Cohort filter: CHs of this CSP region (repeatable)"),
    ] = None,
    current_version: Annotated[
        str | None,
        typer.Option("--current-version", help="Cohort filter: CHs now at this version (hex)"),
    ] = None,
    error_threshold: Annotated[
        float, typer.Option(help="Pause when over this % of a phase's outcomes failed")
    ] = 10.0,
    min_sample: Annotated[
        int, typer.Option(help="Outcomes a phase needs before its error threshold applies")
    ] = 20,
    success_threshold: Annotated[
        float, typer.Option(help="% of a phase that must succeed before the next one opens")
    ] = 90.0,
    unconfirmed_after: Annotated[
        int, typer.Option(help="Seconds after dispatch with no outcome: counted unconfirmed")
    ] = campaigns.DEFAULT_UNCONFIRMED_AFTER,
) -> None:
    """Define a campaign (a draft): its hubs are assigned to phases now, deterministically."""
    with run_guarded():
        target = FirmwareVersion.parse(target_version)
        phases = [PhaseSpec.parse(p) for p in phase]
        gates = Gates(error_threshold, min_sample, success_threshold)
        current = FirmwareVersion.parse(current_version) if current_version else None
    members = _cohort(cohort, region or [], current_version)
    actor = audit.current_actor()
    with transaction() as conn:
        if members is None:
            members = campaigns.cohort_from_estate(conn, [r.value for r in region or []], current)
        created = campaigns.create(
            conn,
            name,
            target,
            members,
            phases,
            gates,
            actor=actor,
            now=utc_now(),
            unconfirmed_after=unconfirmed_after,
        )
        sizes = {p.label: p.assigned for p in created.phases}
        audit.record(
            conn,
            actor,
            "campaign.create",
            {"campaign": name, "target_version": target.hex, "phases": sizes},
        )
    shown = ", ".join(f"{label} {n:,}" for label, n in sizes.items())
    typer.echo(f"created campaign {name!r} (draft): target {target.hex}, phases {shown}")


def _move(name: str, action: str, error_threshold: float | None = None) -> None:
    actor = audit.current_actor()
    with transaction() as conn:
        changed = campaigns.change_state(
            conn, name, action, actor=actor, now=utc_now(), error_threshold=error_threshold
        )
        detail: dict[str, object] = {"campaign": name, "state": changed.state.value}
        if error_threshold is not None:
            detail["error_threshold"] = error_threshold
        audit.record(conn, actor, f"campaign.{action}", detail)
    typer.echo(f"campaign {name!r} is {changed.state.value}")


@app.command()
def start(name: NameArg) -> None:
    """Start a draft campaign: its first phase's hubs appear in the CSPs' work lists."""
    _move(name, "start")


@app.command()
def pause(name: NameArg) -> None:
    """Pause a running campaign: the work lists empty until it is resumed."""
    _move(name, "pause")


@app.command()
def resume(
    name: NameArg,
    error_threshold: Annotated[
        float | None,
        typer.Option(help="A new error threshold (%), e.g. to go on past the one that paused it"),
    ] = None,
) -> None:
    """Resume a paused campaign (only a person does; the gates do not)."""
    _move(name, "resume", error_threshold)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Every campaign, newest first, with its state."""
    with transaction() as conn:
        found = campaigns.list_campaigns(conn)
    if as_json:
        rows = [
            {
                "name": c.name,
                "target_version": c.target.hex,
                "state": c.state.value,
                "reason": c.reason,
                "hubs": sum(p.assigned for p in c.phases),
                "created_at": c.created_at.isoformat(),
            }
            for c in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not found:
        typer.echo("no campaigns (create one with `chfw campaign create`)")
        return
    table = Table("Name", "Target", "State", "Hubs", "Phases", "Reason")
    for c in found:
        table.add_row(
            c.name,
            c.target.hex,
            c.state.value,
            f"{sum(p.assigned for p in c.phases):,}",
            ", ".join(p.label for p in c.phases),
            c.reason or "",
        )
    console().print(table)


@app.command()
def status(
    name: NameArg, as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """A campaign's state, reason and each phase's counts."""
    with transaction() as conn:
        found = campaigns.status(conn, name, utc_now())
    data = found.as_json()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"campaign {name!r}: {data['state']} ({data['reason']})")
    typer.echo(f"target {data['target_version']}; {campaigns.describe_gates(found.campaign.gates)}")
    table = Table(
        "Phase", "State", "Size", "Dispatched", "Succeeded", "Failed", "Unconfirmed", "Held"
    )
    for p in data["phases"]:
        table.add_row(
            p["label"],
            p["state"],
            *(
                f"{p[k]:,}"
                for k in ("size", "dispatched", "succeeded", "failed", "unconfirmed", "held")
            ),
        )
    console().print(table)
