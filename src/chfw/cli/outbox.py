"""`chfw outbox`: what is waiting, what failed and why; retry and replay for operators."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from chfw.cli._context import engine, fail, run_guarded
from chfw.cli._output import console, on_terminal
from chfw.cli._store import transaction
from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, UserId
from chfw.dsp.parked import ParkedBuild, build_parked
from chfw.dsp.store import archive, audit, outbox
from chfw.dsp.store.errors import translated
from chfw.dsp.store.outbox import BulkChange, OutboxDetail, OutboxRow

app = typer.Typer(
    help="The outbox of alerts: list, show, retry now, replay dead letters, archive.",
    no_args_is_help=True,
)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def _row_json(row: OutboxRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "response_id": row.response_id,
        "state": row.display_state,
        "alert_code": row.alert_code,
        "user_id": str(UserId(bytes.fromhex(row.user_id))),
        "device_id": str(DeviceId(bytes.fromhex(row.device_id))),
        "duis_version": row.duis_version,
        "firmware_version": row.firmware_version,
        "history_id": row.history_id,
        "attempts": row.attempts,
        "created_at": _time(row.created_at),
        "next_attempt_at": _time(row.next_attempt_at),
        "lease_until": _time(row.lease_until),
        "delivered_at": _time(row.delivered_at),
        "last_error": row.last_error,
        "document_bytes": row.document_size,
    }


def _document_text(document: bytes) -> tuple[str, str]:
    """The document as text and its encoding in JSON: utf-8, or base64 when it is not text."""
    try:
        return document.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(document).decode("ascii"), "base64"


def _detail_json(detail: OutboxDetail) -> dict[str, Any]:
    text, encoding = _document_text(detail.document)
    return {
        **_row_json(detail.row),
        "document": text,
        "document_encoding": encoding,
        "attempts_log": [
            {
                "attempted_at": _time(a.attempted_at),
                "outcome": a.outcome,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in detail.attempts
        ],
    }


def _user_hex(text: str | None) -> str | None:
    return None if text is None else UserId.parse(text).hex


@app.command("list")
def list_(
    state: Annotated[
        str | None,
        typer.Option(
            help="pending, retrying (pending after a failure), delivered, dead or parked "
            "(not built: `chfw outbox retry` builds them)"
        ),
    ] = None,
    user: Annotated[str | None, typer.Option(help="Only this Service User (User ID)")] = None,
    device: Annotated[str | None, typer.Option(help="Only this Communications Hub")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List outbox rows, newest first."""
    with run_guarded(2):
        if state is not None and state not in outbox.LIST_STATES:
            raise fail(
                f"--state {state!r} is not one of {', '.join(sorted(outbox.LIST_STATES))}", 2
            )
        user_hex = _user_hex(user)
        device_hex = None if device is None else DeviceId.parse(device).hex
    with transaction() as conn:
        rows = outbox.list_rows(conn, state, user_hex, device_hex, limit)
    if as_json:
        typer.echo(json.dumps([_row_json(row) for row in rows], indent=2))
        return
    if not rows:
        typer.echo("no outbox rows match")
        return
    table = Table("ID", "State", "Alert", "User", "CH", "Tries", "Next / delivered", "Last error")
    for row in rows:
        when = row.delivered_at if row.state == "delivered" else row.next_attempt_at
        table.add_row(
            str(row.id),
            row.display_state,
            row.alert_code,
            str(UserId(bytes.fromhex(row.user_id))),
            str(DeviceId(bytes.fromhex(row.device_id))),
            str(row.attempts),
            _time(when) if row.state not in ("dead", "parked") else "-",
            # Shortened for a person at a terminal; whole for a script (and in --json).
            (row.last_error or "")[: 80 if on_terminal() else None],
        )
    console().print(table)


@app.command()
def show(
    key: Annotated[
        str, typer.Argument(metavar="ID_OR_RESPONSE_ID", help="Outbox id or ResponseID")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show one row: its state, every delivery attempt and the signed document.

    Alerts moved by `chfw outbox archive` are found in the archive (state "archived")."""
    with transaction() as conn:
        detail = outbox.get(conn, key) or archive.get_archived(conn, key)
    if detail is None:
        raise fail(f"no outbox row or archived alert with id or ResponseID {key!r}")
    if as_json:
        typer.echo(json.dumps(_detail_json(detail), indent=2))
        return
    for name, value in _row_json(detail.row).items():
        if value is not None:
            typer.echo(f"{name + ':':<17} {value}")
    typer.echo("attempts:" if detail.attempts else "attempts:        none yet")
    for attempt in detail.attempts:
        status = "-" if attempt.status_code is None else str(attempt.status_code)
        duration = "" if attempt.duration_ms is None else f" {attempt.duration_ms:.0f} ms"
        typer.echo(
            f"  {_time(attempt.attempted_at)}  {attempt.outcome:<9} {status:>3}{duration}"
            + (f"  {attempt.error}" if attempt.error else "")
        )
    text, encoding = _document_text(detail.document)
    typer.echo(f"document ({encoding}):")
    typer.echo(text)


def _resolve(keys: list[str]) -> tuple[list[int], list[str]]:
    with transaction() as conn:
        found = outbox.resolve(conn, keys)
    ids = [i for i in found.values() if i is not None]
    return ids, [key for key, i in found.items() if i is None]


def _report(change: BulkChange, unknown: list[str], done: str) -> None:
    typer.echo(f"{len(change.changed)} row(s) {done}")
    for outbox_id, state in sorted(change.skipped.items()):
        typer.echo(f"row {outbox_id} left alone: it is {state}", err=True)
    for key in unknown:
        typer.echo(f"no outbox row with id or ResponseID {key!r}", err=True)
    if change.skipped or unknown or change.missing:
        raise typer.Exit(1)


@app.command()
def retry(
    keys: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ID_OR_RESPONSE_ID",
            help="Outbox ids or ResponseIDs of pending or parked rows",
        ),
    ] = None,
    all_pending: Annotated[
        bool, typer.Option("--all", help="Every pending row waiting for a later try: due now")
    ] = False,
    all_parked: Annotated[
        bool, typer.Option("--all-parked", help="Build every parked row")
    ] = False,
    user: Annotated[
        str | None,
        typer.Option(
            help="Every pending row of this Service User: due now (with --all-parked: "
            "build only this user's parked rows)"
        ),
    ] = None,
) -> None:
    """Make pending rows due now (e.g. after a Service User fixed its endpoint); build
    parked rows (alerts the intake could not build) and make them due now.

    `--user U` makes every pending row of U due now, `--all` every pending row (both
    audited under your OS user); rows a worker is sending are left alone, and the
    order per CH and user still holds. A parked row is built for its user's current
    DUIS version, with the signing key and schemas of the settings (audited); one that
    still cannot be built stays parked with the new reason (exit 1). One whose version
    its CH no longer runs is superseded: not sent, kept parked with that reason.
    """
    modes = sum((bool(keys), all_pending, all_parked, user is not None and not all_parked))
    if modes != 1:
        raise fail("give one of: outbox ids / ResponseIDs, --user USER, --all, --all-parked", 2)
    with run_guarded(2):
        user_hex = _user_hex(user)
    if not all_parked and not keys:
        with transaction() as conn:
            count = outbox.make_due(conn, utc_now(), user_hex, actor=audit.current_actor())
        typer.echo(f"{count} pending row(s) due now")
        return
    unknown: list[str] = []
    if all_parked:
        with transaction() as conn:
            ids = outbox.parked_ids(conn, user_hex)
    else:
        ids, unknown = _resolve(keys or [])
    now = utc_now()
    with transaction() as conn:
        parked = {row.id for row in outbox.parked_rows(conn, ids)}
        change = outbox.retry_now(conn, [i for i in ids if i not in parked], now)
    built = _build_parked(sorted(parked), now)
    if all_parked and not ids:
        typer.echo("no parked rows")
        return
    if change.changed or not parked:
        typer.echo(f"{len(change.changed)} row(s) due now")
    if parked:
        typer.echo(f"{len(built.built)} parked row(s) built, due now")
    for outbox_id, reason in sorted(built.still_parked.items()):
        typer.echo(f"row {outbox_id} still parked: {reason}", err=True)
    for outbox_id, reason in sorted(built.superseded.items()):
        typer.echo(f"row {outbox_id} not sent: {reason}")
    for outbox_id, state in sorted(change.skipped.items()):
        typer.echo(f"row {outbox_id} left alone: it is {state}", err=True)
    for key in unknown:
        typer.echo(f"no outbox row with id or ResponseID {key!r}", err=True)
    if built.still_parked or change.skipped or unknown or change.missing:
        raise typer.Exit(1)


def _build_parked(ids: list[int], now: datetime) -> ParkedBuild:
    """Build parked rows with the settings' signing key and schemas (chfw.dsp.parked)."""
    if not ids:
        return ParkedBuild()
    from chfw.cli._context import settings
    from chfw.dsp.alerts import AlertBuilder
    from chfw.dsp.runtime import load_schemas, load_signer

    with run_guarded(), translated():
        config = settings()  # parked rows keep their ResponseIDs: no counters taken
        builder = AlertBuilder(config.dcc_user, load_signer(config), load_schemas(config))
        return build_parked(engine(), builder, ids, audit.current_actor(), now)


@app.command()
def replay(
    keys: Annotated[
        list[str] | None,
        typer.Argument(metavar="ID_OR_RESPONSE_ID", help="Outbox ids or ResponseIDs of dead rows"),
    ] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Replay every dead row")] = False,
    user: Annotated[
        str | None, typer.Option(help="With --all-dead: only this Service User's rows")
    ] = None,
) -> None:
    """Put dead-lettered rows back in the queue, due now (audited under your OS user)."""
    if all_dead == bool(keys):
        raise fail("give either outbox ids / ResponseIDs or --all-dead", 2)
    if user is not None and not all_dead:
        raise fail("--user goes with --all-dead", 2)
    with run_guarded(2):
        user_hex = _user_hex(user)
    unknown: list[str] = []
    if all_dead:
        with transaction() as conn:
            ids = outbox.dead_ids(conn, user_hex)
    else:
        ids, unknown = _resolve(keys or [])
    with transaction() as conn:
        change = outbox.replay(conn, ids, audit.current_actor(), utc_now())
    _report(change, unknown, "back to pending, due now")


@app.command("archive")
def archive_(
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            min=0,
            help="Move alerts delivered more than DAYS ago (your retention period in the outbox)",
        ),
    ],
    batch: Annotated[
        int, typer.Option(min=1, help="Alerts moved per transaction")
    ] = archive.DEFAULT_BATCH,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be moved")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Move old delivered alerts and their attempts to the archive tables (audited).

    Pending and dead alerts stay. Safe to run while workers deliver, and to
    interrupt: each batch moves in one transaction, and the next run carries on.
    """
    now = utc_now()
    before = now - timedelta(days=older_than)
    if dry_run:
        with transaction() as conn:
            count = archive.archivable(conn, before)
        result: dict[str, Any] = {"delivered_before": before.isoformat(), "would_move": count}
        typer.echo(json.dumps(result) if as_json else f"{count} delivered alert(s) to archive")
        return
    with run_guarded(), translated():
        moved = archive.archive_delivered(
            engine(), before, now, actor=audit.current_actor(), batch=batch
        )
    result = {
        "delivered_before": before.isoformat(),
        "alerts": moved.alerts,
        "attempts": moved.attempts,
        "batches": moved.batches,
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"{moved.alerts} delivered alert(s) and {moved.attempts} attempt(s) archived "
            f"(delivered before {before:%Y-%m-%d %H:%M:%S} UTC)"
        )
