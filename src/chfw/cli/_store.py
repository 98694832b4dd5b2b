"""Database access for CLI commands: one transaction, errors as clean messages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from chfw.cli._context import engine, run_guarded, settings
from chfw.dsp.store.errors import translated
from chfw.shared.db.engine import display_url


@contextmanager
def transaction() -> Iterator[Connection]:
    """``with transaction() as conn:`` -- committed on success; any chfw or database error
    rolls back and ends the command with a one-line message instead of a traceback."""
    with run_guarded(), translated(), engine().begin() as conn:
        yield conn


def database_label() -> str:
    """The database URL without its password, for messages."""
    return display_url(settings().database_url)
