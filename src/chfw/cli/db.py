"""`chfw db`: the database schema (migrations), and what to do after a restore."""

from __future__ import annotations

from typing import Annotated

import typer

from chfw.cli._context import engine, run_guarded
from chfw.cli._store import database_label, transaction
from chfw.dsp.store import audit, counters, migrate
from chfw.dsp.store.errors import translated

app = typer.Typer(help="Database schema: create and upgrade it.", no_args_is_help=True)


@app.command()
def upgrade(
    revision: Annotated[str, typer.Option(help="Target revision")] = "head",
) -> None:
    """Create or upgrade the database schema to the newest revision (safe to repeat)."""
    with run_guarded(), translated():
        before = migrate.current_revision(engine())
        after = migrate.upgrade(engine(), revision)
        label = database_label()
    if before == after:
        typer.echo(f"database {label} already at revision {after}")
    else:
        typer.echo(f"database {label} upgraded from {before or 'empty'} to revision {after}")


@app.command()
def current() -> None:
    """Print the schema revision of the database, and whether it is the newest."""
    with run_guarded(), translated():
        revision = migrate.current_revision(engine())
        head = migrate.head_revision()
        label = database_label()
    if revision is None:
        typer.echo(f"database {label} has no chfw schema; run `chfw db upgrade`")
        raise typer.Exit(1)
    state = "up to date" if revision == head else f"behind {head}: run `chfw db upgrade`"
    typer.echo(f"database {label} at revision {revision} ({state})")


#: How far `chfw db after-restore` moves the ResponseID counter by default.
RESTORE_MARGIN = 100_000_000


@app.command("after-restore")
def after_restore(
    margin: Annotated[
        int,
        typer.Option(
            min=1,
            help="Move the counter this far: more than the alerts issued between the backup "
            "and the failure",
        ),
    ] = RESTORE_MARGIN,
) -> None:
    """After restoring a backup, before starting any process: move the ResponseID counter
    past every value issued since the backup (audited).

    A restore rewinds the counter; alerts issued after the backup carry values it would
    hand out again, and receivers drop an alert whose ResponseID they have seen.
    Counters need to be unique, not dense, so a generous margin costs nothing.
    """
    with transaction() as conn:
        moved = counters.allocate(conn, counters.RESPONSE_ID, margin)
        detail = {"counter": counters.RESPONSE_ID, "before": moved.start, "after": moved.stop}
        audit.record(conn, audit.current_actor(), "db.after-restore", detail)
    typer.echo(
        f"database {database_label()}: ResponseID counter moved from {moved.start} to "
        f"{moved.stop} (audited as db.after-restore); the processes may be started"
    )
