"""`chfw pilot`: firmware pilots on the supplier side -- a target version, a cohort, progress;
created, edited and deleted with an entry in the back office's audit log."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.engine import Connection

from chfw.cli._backoffice import DatabaseOption, backoffice_transaction
from chfw.cli._context import fail, run_guarded
from chfw.cli._output import console
from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.shared.db import audit as audit_log
from chfw.supplier import pilots
from chfw.supplier.cohort import Cohort, read_cohort

app = typer.Typer(
    help="Firmware pilots: a target version and a cohort of CHs, and their progress.",
    no_args_is_help=True,
)

_REJECTS_SHOWN = 20


def read_cohort_file(path: Path, what: str = "cohort file") -> Cohort:
    """A file of CH IDs (:mod:`chfw.supplier.cohort`); a clean error names ``what`` it is."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            return read_cohort(lines)
    except OSError as exc:
        raise fail(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise fail(f"{what} {path} is not UTF-8 text: {exc}") from None


def audit(conn: Connection, action: str, detail: dict[str, Any]) -> None:
    """Record a back-office change in the back office's own audit log."""
    from chfw.supplier.schema import bo_audit_log

    audit_log.record(conn, bo_audit_log, audit_log.current_actor(), action, detail)


def report_rejects(path: Path, members: Cohort) -> None:
    """The lines of ``path`` that named no CH, the first few of them, on stderr."""
    for reject in members.rejects[:_REJECTS_SHOWN]:
        typer.echo(f"{path}:{reject.line}: rejected {reject.text!r}: {reject.reason}", err=True)
    if len(members.rejects) > _REJECTS_SHOWN:
        typer.echo(f"... and {len(members.rejects) - _REJECTS_SHOWN} more rejected", err=True)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Pilot name, e.g. 'CH fw 2.1.4 north'")],
    target_version: Annotated[
        str, typer.Option("--target-version", help="Firmware version the pilot rolls out (hex)")
    ],
    cohort: Annotated[
        Path,
        typer.Option(
            "--cohort",
            help="CSV with a device_id column, or one Device ID per line",
            dir_okay=False,
        ),
    ],
    description: Annotated[str | None, typer.Option(help="Free text, e.g. a ticket")] = None,
    database: DatabaseOption = None,
) -> None:
    """Define a pilot; cohort lines that are not Device IDs are reported and left out."""
    with run_guarded():
        pilots.check_name(name)
        target = FirmwareVersion.parse(target_version)
        members = read_cohort_file(cohort)
    report_rejects(cohort, members)
    if not members.device_ids:
        raise fail(f"cohort file {cohort} names no valid Device ID; no pilot created")
    with backoffice_transaction(database) as conn:
        pilot = pilots.create_pilot(conn, name, target, members.device_ids, utc_now(), description)
        audit(
            conn,
            "pilot.create",
            {
                "pilot": name,
                "target_version": target.hex,
                "cohort": pilot.cohort_size,
                "cohort_file": str(cohort),
                "rejected": len(members.rejects),
            },
        )
    typer.echo(
        f"created pilot {name!r}: target {target.hex}, {pilot.cohort_size} CHs"
        f" ({len(members.rejects)} lines rejected, {members.duplicates} duplicates ignored)"
    )


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")


def _duration(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{days}d {clock}" if days else clock


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="Pilot name")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON, with the cumulative activation series")
    ] = False,
    database: DatabaseOption = None,
) -> None:
    """Progress: activated, not yet, share, first/last activation, time to 50 % and 90 %."""
    with backoffice_transaction(database) as conn:
        pilot, figures = pilots.pilot_progress(conn, name)
    if as_json:
        typer.echo(json.dumps(pilots.progress_json(pilot, figures), indent=2))
        return
    counts = {status.value: n for status, n in figures.statuses.items()}
    typer.echo(
        f"pilot {pilot.name!r}: target {pilot.target_version.hex}, cohort {figures.cohort} CHs "
        f"(created {_when(pilot.created_at)})"
    )
    typer.echo(
        f"  activated         {figures.activated} ({figures.share:.1%})"
        f"  [still on target {counts['activated']}, moved on since {counts['moved_on']}]"
    )
    typer.echo(
        f"  not yet           {figures.not_yet}"
        f"  [version being fetched {counts['version_pending']}]"
    )
    typer.echo(f"  first activation  {_when(figures.first_activation)}")
    typer.echo(f"  last activation   {_when(figures.last_activation)}")
    for milestone in figures.milestones:
        label = f"{milestone.percent} % ({milestone.needed} CHs)"
        if milestone.reached_at is None:
            typer.echo(f"  {label:<17} not reached")
        else:
            typer.echo(
                f"  {label:<17} {_duration(milestone.after_first)} after the first activation "
                f"({_when(milestone.reached_at)})"
            )


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="Pilot name")],
    out: Annotated[
        Path | None, typer.Option("--out", help="CSV file to write (default: standard output)")
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """CSV, one row per cohort CH: device_id, active_version, activated_at, status."""
    with backoffice_transaction(database) as conn:
        pilot = pilots.get_pilot(conn, name)
        if out is None:
            pilots.write_export(pilot, pilots.member_states(conn, pilot), sys.stdout)
            return
        try:
            with out.open("w", encoding="utf-8", newline="") as handle:
                rows = pilots.write_export(pilot, pilots.member_states(conn, pilot), handle)
        except OSError as exc:
            raise fail(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {rows} CHs of pilot {name!r} to {out}")


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    database: DatabaseOption = None,
) -> None:
    """List pilots: name, target version, cohort size, when created."""
    with backoffice_transaction(database) as conn:
        found = pilots.list_pilots(conn)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "target_version": p.target_version.hex,
                        "cohort": p.cohort_size,
                        "description": p.description,
                        "created_at": p.created_at.isoformat(),
                    }
                    for p in found
                ],
                indent=2,
            )
        )
        return
    if not found:
        typer.echo("no pilots (create one with `chfw pilot create`)")
        return
    table = Table("Pilot", "Target", "Cohort", "Created", "Description")
    for p in found:
        table.add_row(
            p.name,
            p.target_version.hex,
            str(p.cohort_size),
            _when(p.created_at),
            p.description or "",
        )
    console().print(table)


def _members(path: Path | None) -> tuple[DeviceId, ...]:
    if path is None:
        return ()
    members = read_cohort_file(path)
    report_rejects(path, members)
    return members.device_ids


@app.command()
def edit(
    name: Annotated[str, typer.Argument(help="Pilot name")],
    rename: Annotated[str | None, typer.Option("--rename", help="New name")] = None,
    target_version: Annotated[
        str | None, typer.Option("--target-version", help="New target version (hex)")
    ] = None,
    description: Annotated[str | None, typer.Option(help="New description ('' removes it)")] = None,
    add: Annotated[
        Path | None,
        typer.Option("--add", help="Cohort file of CHs to add (as for create)", dir_okay=False),
    ] = None,
    remove: Annotated[
        Path | None,
        typer.Option("--remove", help="Cohort file of CHs to remove", dir_okay=False),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Change a pilot: its name, target version, description or cohort (audited)."""
    with run_guarded():
        change = pilots.PilotChange(
            rename=rename,
            target=FirmwareVersion.parse(target_version) if target_version else None,
            description=description,
            add=_members(add),
            remove=_members(remove),
        )
    if change == pilots.PilotChange():
        raise fail(
            "nothing to change: give --rename, --target-version, --description, --add or --remove"
        )
    with backoffice_transaction(database) as conn:
        before, after = pilots.edit_pilot(conn, name, change)
        audit(
            conn,
            "pilot.edit",
            {
                "pilot": name,
                "before": _summary(before),
                "after": _summary(after),
                "added_from": str(add) if add else None,
                "removed_from": str(remove) if remove else None,
            },
        )
    typer.echo(
        f"pilot {after.name!r}: target {after.target_version.hex}, {after.cohort_size} CHs "
        f"(was {before.name!r}: target {before.target_version.hex}, {before.cohort_size} CHs)"
    )


def _summary(pilot: pilots.Pilot) -> dict[str, Any]:
    return {
        "name": pilot.name,
        "target_version": pilot.target_version.hex,
        "description": pilot.description,
        "cohort": pilot.cohort_size,
    }


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="Pilot name")],
    yes: Annotated[bool, typer.Option("--yes", help="Really delete it")] = False,
    database: DatabaseOption = None,
) -> None:
    """Delete a pilot and its cohort list (the CHs' alerts and history stay; audited)."""
    with backoffice_transaction(database) as conn:
        pilot = pilots.get_pilot(conn, name)
        if not yes:
            raise fail(
                f"pilot {name!r} has a cohort of {pilot.cohort_size} CHs; add --yes to delete it "
                "(the CHs' alerts and history stay)"
            )
        pilots.delete_pilot(conn, name)
        audit(conn, "pilot.delete", _summary(pilot))
    typer.echo(f"deleted pilot {name!r} ({pilot.cohort_size} CHs in its cohort)")
