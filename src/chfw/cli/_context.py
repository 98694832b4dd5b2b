"""What every command shares: the settings and an engine, from the global --config option."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import click
import typer
from sqlalchemy.engine import Engine

from chfw.exceptions import ChfwError
from chfw.shared.config import Settings, load_settings
from chfw.shared.logs import json_mode, notice

_config_path: Path | None = None


def set_config_path(path: Path | None) -> None:
    global _config_path
    _config_path = path
    settings.cache_clear()
    engine.cache_clear()


@cache
def settings() -> Settings:
    return load_settings(_config_path)


@cache
def engine() -> Engine:
    """The command's engine; on PostgreSQL its connections are named after the command
    (``application_name`` "chfw serve", "chfw worker", ...)."""
    from chfw.shared.db.engine import engine_for_settings

    context = click.get_current_context(silent=True)
    name = "chfw" if context is None else f"chfw {context.command_path.split(' ', 1)[-1]}"
    return engine_for_settings(settings(), name)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an operator-readable error (no traceback) and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run_guarded(code: int = 1, *, service: bool = False) -> _Guard:
    """``with run_guarded(): ...`` turns any ChfwError into a clean message and exit code.

    ``service``: a long-running service's start-up (``chfw serve``, ``chfw worker``): with
    JSON logs the message is a JSON line too (event ``start_failed``), like the rest of its
    log."""
    return _Guard(code, service)


class _Guard:
    def __init__(self, code: int, service: bool = False) -> None:
        self.code = code
        self.service = service

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, ChfwError):
            if self.service and json_mode():
                notice("start_failed", f"error: {exc}", level="error")
                raise typer.Exit(self.code) from None
            raise fail(str(exc), self.code) from None
