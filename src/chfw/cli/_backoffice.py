"""The supplier's database for back-office commands: ``--database URL`` or the settings' one.

Every back-office command opens it through :func:`backoffice_transaction` or
:func:`backoffice_engine`, which refuse a database without the back office's
schema (and a SQLite file that does not exist, rather than create an empty one),
naming the URL without its password and how to create the schema: run in the
wrong folder, a command used to make an empty ``./chfw.db`` and advise
``chfw db upgrade`` (the DSP's chain) without saying which database it opened.
Only ``chfw receiver upgrade`` (and ``receiver serve``, which runs it) creates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from sqlalchemy.engine import Connection, Engine

from chfw.cli._context import engine, fail, run_guarded, settings
from chfw.dsp.store.errors import translated
from chfw.shared.db.engine import display_url

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Back-office database URL (default: the settings' database_url)",
        show_default=False,
    ),
]


def _sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (None: not SQLite, in memory, or unparsable)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _create_hint(shown: str) -> str:
    return (
        "is this the supplier's database? Run from the folder of its chfw.toml, or give "
        f"--database URL; to create the back office there: chfw receiver upgrade --database "
        f"'{shown}'"
    )


def _refuse_missing_file(url: str) -> None:
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        shown = display_url(url)
        raise fail(
            f"no database at {shown} (file {path.resolve()} does not exist): " + _create_hint(shown)
        )


def require_backoffice(eng: Engine, url: str) -> None:
    """Refuse a database whose back-office schema is absent or older than this chfw's."""
    from chfw.supplier import migrate

    with run_guarded(), translated():
        revision = migrate.current_revision(eng)
    shown = display_url(url)
    if revision is None:
        raise fail(f"the database {shown} has no back-office schema: " + _create_hint(shown))
    head = migrate.head_revision()
    if revision != head:
        raise fail(
            f"the database {shown} holds back-office revision {revision}, this chfw needs "
            f"{head}: run chfw receiver upgrade --database '{shown}'"
        )


@contextmanager
def backoffice_transaction(database: str | None) -> Iterator[Connection]:
    """One transaction on ``database`` (a URL), else on the configured database.

    Committed on success; a chfw or database error ends the command with a
    one-line message, as every other command does. Refuses a database without
    the back office (:func:`require_backoffice`).
    """
    eng = backoffice_engine(database)
    try:
        with run_guarded(), translated(), eng.begin() as conn:
            yield conn
    finally:
        if database is not None:
            eng.dispose()


def backoffice_engine(database: str | None) -> Engine:
    """An engine on ``database`` (a URL), else the configured one (do not dispose that one),
    after checking it holds the back office."""
    url = database or settings().database_url
    _refuse_missing_file(url)
    if database is None:
        with run_guarded():
            eng = engine()
    else:
        from chfw.shared.db.engine import create_engine_for

        with run_guarded(), translated():  # a malformed URL or a missing driver
            eng = create_engine_for(database)
    try:
        require_backoffice(eng, url)
    except typer.Exit:
        if database is not None:
            eng.dispose()
        raise
    return eng
