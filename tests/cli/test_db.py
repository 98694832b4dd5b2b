"""`chfw db`: create and inspect the schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli.db import app
from chfw.dsp.store import audit, counters
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


class TestAfterRestore:
    """`chfw db after-restore` moves the ResponseID counter past the restore's gap, audited."""

    def test_counter_moved_and_audited(
        self, engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with engine.begin() as conn:
            issued = counters.allocate(conn, counters.RESPONSE_ID, 500)  # alerts before
        cli = cli_db(database_url, tmp_path, monkeypatch)
        result = cli.invoke(app, "after-restore", "--margin", "1000000")
        assert result.exit_code == 0, result.output
        assert f"moved from {issued.stop} to {issued.stop + 1_000_000}" in result.stdout
        with engine.connect() as conn:
            assert counters.peek(conn, counters.RESPONSE_ID) == issued.stop + 1_000_000
            entry = audit.list_recent(conn, 1)[0]
        assert entry.action == "db.after-restore"
        assert entry.detail == {
            "counter": "response_id",
            "before": issued.stop,
            "after": issued.stop + 1_000_000,
        }

    def test_default_margin(
        self, engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        result = cli_db(database_url, tmp_path, monkeypatch).invoke(app, "after-restore")
        assert result.exit_code == 0, result.output
        with engine.connect() as conn:
            assert counters.peek(conn, counters.RESPONSE_ID) == 1 + 100_000_000
