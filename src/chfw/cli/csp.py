"""`chfw csp`: the CSPs allowed to post CS06 answers to the intake, and their credentials."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from chfw.cli._context import run_guarded, settings
from chfw.cli._output import console
from chfw.cli._store import transaction
from chfw.core.clock import utc_now
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import audit, csps

app = typer.Typer(help="CSPs and their intake credentials.", no_args_is_help=True)

_ONCE = (
    "This credential is shown only now and cannot be shown again: give it to the CSP "
    "(Authorization: Bearer <credential>) and keep no other copy."
)


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="CSP name, e.g. csp-north")],
    region: Annotated[
        list[CspRegion] | None,
        typer.Option(
            "--region",
            help="A CSP region it serves (repeatable); none given: every region",
        ),
    ] = None,
) -> None:
    """Register a CSP and print its new credential (once; on stdout, the notice on stderr).

    A CSP bound to regions gets only its regions' hubs in campaign work lists, and the
    intake refuses its outcomes for hubs of other regions."""
    with transaction() as conn:
        credential = csps.add_csp(conn, name, regions=region or None)
        detail: dict[str, object] = {"name": name}
        if region:
            detail["regions"] = sorted(r.value for r in region)
        audit.record(conn, audit.current_actor(), "csp.add", detail)
    typer.echo(f"added CSP {name}. {_ONCE}", err=True)
    typer.echo(credential)


@app.command()
def regions(
    name: Annotated[str, typer.Argument(help="CSP name")],
    region: Annotated[
        list[CspRegion] | None,
        typer.Option("--region", help="A CSP region it serves (repeatable); none: every region"),
    ] = None,
) -> None:
    """Bind a registered CSP to its regions (or, with none, to every region)."""
    with transaction() as conn:
        csps.set_regions(conn, name, region or None)
        chosen = sorted(r.value for r in region or [])
        audit.record(conn, audit.current_actor(), "csp.regions", {"name": name, "regions": chosen})
    typer.echo(f"CSP {name} serves {', '.join(chosen) if chosen else 'every region'}")


@app.command()
def rotate(
    name: Annotated[str, typer.Argument(help="CSP name")],
    grace: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="How long the old credential is still accepted (default: the setting "
            "csp_rotation_grace_seconds; 0: refused at once, e.g. when it leaked)",
        ),
    ] = None,
) -> None:
    """Issue a new credential for a CSP and print it once; the old one is still accepted
    for a grace period, so the CSP can switch without refused posts (audited)."""
    with run_guarded():
        seconds = settings().csp_rotation_grace_seconds if grace is None else grace
    now = utc_now()
    with transaction() as conn:
        credential = csps.rotate(conn, name, grace_seconds=seconds, now=now)
        audit.record(
            conn, audit.current_actor(), "csp.rotate", {"name": name, "grace_seconds": seconds}
        )
    until = (now + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S UTC")
    old = f"the old one is accepted until {until}" if seconds else "the old one is refused now"
    typer.echo(f"new credential for CSP {name} ({old}). {_ONCE}", err=True)
    typer.echo(credential)


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List CSPs (credentials are never shown, only their public token id)."""
    with transaction() as conn:
        found = csps.list_csps(conn)
    if as_json:
        rows = [
            {
                "name": csp.name,
                "token_id": csp.token_id,
                "enabled": csp.enabled,
                "created_at": csp.created_at.isoformat(),
                "regions": None if csp.regions is None else [r.value for r in csp.regions],
            }
            for csp in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not found:
        typer.echo("no CSPs registered (add one with `chfw csp add NAME`)")
        return
    table = Table("Name", "Token id", "Enabled", "Regions", "Created (UTC)")
    for csp in found:
        table.add_row(
            csp.name,
            csp.token_id,
            "yes" if csp.enabled else "no",
            "all" if csp.regions is None else ", ".join(r.value for r in csp.regions),
            csp.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console().print(table)


@app.command()
def disable(name: Annotated[str, typer.Argument(help="CSP name")]) -> None:
    """Refuse a CSP's credential from now on (running intakes: within 30 s)."""
    with transaction() as conn:
        csps.disable_csp(conn, name)
        audit.record(conn, audit.current_actor(), "csp.disable", {"name": name})
    typer.echo(
        f"CSP {name} disabled; running intake processes refuse it within "
        f"{csps.CACHE_TTL_SECONDS:.0f} s (`chfw csp rotate {name}` issues a new credential)"
    )
