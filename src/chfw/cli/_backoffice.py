"""The supplier's database for back-office commands: ``--database URL`` or the settings' one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy.engine import Connection, Engine

from chfw.cli._context import engine, run_guarded
from chfw.cli._store import transaction
from chfw.dsp.store.errors import translated

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Back-office database URL (default: the settings' database_url)",
        show_default=False,
    ),
]


@contextmanager
def backoffice_transaction(database: str | None) -> Iterator[Connection]:
    """One transaction on ``database`` (a URL), else on the configured database.

    Committed on success; a chfw or database error ends the command with a
    one-line message, as every other command does.
    """
    if database is None:
        with transaction() as conn:
            yield conn
        return
    from chfw.shared.db.engine import create_engine_for

    with run_guarded(), translated():  # a malformed URL or a missing driver
        engine = create_engine_for(database)
    try:
        with run_guarded(), translated(), engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def backoffice_engine(database: str | None) -> Engine:
    """An engine on ``database`` (a URL), else the configured one (do not dispose that one)."""
    if database is None:
        with run_guarded():
            return engine()
    from chfw.shared.db.engine import create_engine_for

    with run_guarded(), translated():
        return create_engine_for(database)
