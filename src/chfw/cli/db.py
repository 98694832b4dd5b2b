"""`chfw db`: the database schema (migrations)."""

from __future__ import annotations

from typing import Annotated

import typer

from chfw.cli._context import engine, run_guarded
from chfw.cli._store import database_label
from chfw.dsp.store import migrate
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
