"""Run one CLI group against a test database, the way `chfw` would (settings from CHFW_*)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from chfw.cli import _context


class CliDb:
    """Invokes typer apps with CHFW_DATABASE_URL pointing at one database."""

    def __init__(self, url: str) -> None:
        self.url = url

    def invoke(self, app: typer.Typer, *args: str, input: str | None = None) -> Result:
        _context.set_config_path(None)  # forget settings and engine of an earlier invocation
        env = {"CHFW_DATABASE_URL": self.url, "CHFW_CONFIG": None, "COLUMNS": "200"}
        try:
            return CliRunner().invoke(app, list(args), env=env, input=input)
        finally:
            if _context.engine.cache_info().currsize:
                _context.engine().dispose()
            _context.set_config_path(None)


def cli_db(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliDb:
    """A CliDb run from an empty folder, so no ./chfw.toml is picked up."""
    monkeypatch.chdir(tmp_path)
    return CliDb(url)
