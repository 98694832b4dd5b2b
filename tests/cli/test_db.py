"""`chfw db`: create and inspect the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from chfw.cli.db import app
from chfw.dsp.store.migrate import head_revision
from tests.cli.dbcli import CliDb, cli_db


@pytest.fixture
def cli(empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliDb:
    return cli_db(empty_database_url, tmp_path, monkeypatch)


class TestUpgrade:
    """upgrade migrates an empty database, then reports it is already there."""

    def test_upgrade_then_again(self, cli: CliDb) -> None:
        first = cli.invoke(app, "upgrade")
        second = cli.invoke(app, "upgrade")
        assert first.exit_code == 0, first.output
        assert f"upgraded from empty to revision {head_revision()}" in first.output
        assert second.exit_code == 0
        assert f"already at revision {head_revision()}" in second.output

    def test_current(self, cli: CliDb) -> None:
        before = cli.invoke(app, "current")
        cli.invoke(app, "upgrade")
        after = cli.invoke(app, "current")
        assert before.exit_code == 1
        assert "no chfw schema" in before.output
        assert after.exit_code == 0
        assert "up to date" in after.output

    def test_unusable_database_is_a_clean_error(self, tmp_path: Path) -> None:
        cli = CliDb(f"sqlite:///{tmp_path / 'missing-dir' / 'chfw.db'}")
        result = cli.invoke(app, "upgrade")
        assert result.exit_code == 1
        assert result.output.startswith("error: database error")
        assert "Traceback" not in result.output
