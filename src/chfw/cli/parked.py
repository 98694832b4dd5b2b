"""`chfw parked`: outcomes for CHs not in the estate yet, kept until an import adds them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from chfw.cli._context import engine, fail, run_guarded, settings
from chfw.cli._store import transaction
from chfw.dsp.store import audit, parked_outcomes
from chfw.dsp.store.parked_outcomes import ParkedOutcome

if TYPE_CHECKING:
    from chfw.dsp.parking import ParkedRun

app = typer.Typer(
    help="Outcomes parked because their CH is not in the estate yet.", no_args_is_help=True
)


def _row_json(row: ParkedOutcome) -> dict[str, Any]:
    return {
        "id": row.id,
        "device_id": str(row.device_id),
        "key": row.key,
        "sender": row.sender,
        "originator_counter": row.originator_counter,
        "event": row.event,
        "result": row.result,
        "firmware_version": row.firmware_version,
        "csp": row.csp,
        "received_at": row.received_at.isoformat(),
        "in_estate": row.in_estate,
        "payload_hex": row.payload.hex(),
    }


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many (oldest first)")] = None,
) -> None:
    """Parked outcomes, oldest first: CH, identity, result, CSP, when received.

    A row marked "in estate" has its CH in the estate now and is processed by
    the next `chfw estate import` or `chfw parked process`.
    """
    with transaction() as conn:
        rows = parked_outcomes.list_parked(conn, limit)
        total = parked_outcomes.count(conn)
    if as_json:
        typer.echo(json.dumps([_row_json(row) for row in rows], indent=2))
        return
    if not rows:
        typer.echo("no parked outcomes")
        return
    for row in rows:
        version = f" {row.firmware_version}" if row.firmware_version else ""
        where = "in estate: processed by the next import" if row.in_estate else "CH not in estate"
        typer.echo(
            f"{row.id}  {row.key}  {row.result}{version}  sender {row.sender}  "
            f"csp {row.csp or '-'}  received {row.received_at:%Y-%m-%d %H:%M:%S}Z  ({where})"
        )
    typer.echo(f"{total} parked outcome(s)" + (f", {len(rows)} shown" if total > len(rows) else ""))


@app.command()
def process() -> None:
    """Process the parked outcomes of CHs that are in the estate now (as an import does)."""
    run = process_parked()
    if run is None:
        typer.echo("no parked outcome has its CH in the estate")


def process_parked() -> ParkedRun | None:
    """Process what is ready, print what happened, audit it; None when nothing was ready.

    Used by `chfw estate import` after its rows are committed. Without a signing
    identity (or with another setting wrong) nothing is processed and the command
    fails saying so; the outcomes stay parked.
    """
    from chfw.dsp.parking import process_ready, ready_count
    from chfw.dsp.runtime import build_service

    waiting = ready_count(engine())
    if not waiting:
        return None
    try:
        with run_guarded():
            service = build_service(settings(), engine())
    except typer.Exit:
        raise fail(
            f"{waiting} parked outcome(s) of CHs now in the estate were not processed and "
            "stay parked: fix the setting above, then run `chfw parked process`"
        ) from None
    run = process_ready(engine(), service)
    with transaction() as conn:
        audit.record(conn, audit.current_actor(), "parked.process", run.summary())
    for line in run.lines():
        typer.echo(line)
    return run
