"""`chfw users token`: an inventory read token, printed once, replacing the old, audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli.users import app
from chfw.dsp.store import audit, inventory_access
from tests.cli.dbcli import CliDb, cli_db
from tests.small_dsp import BOB, CAROL, build_dsp


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliDb]:
    build_dsp(engine)
    inventory_access.clear_cache()
    yield cli_db(database_url, tmp_path, monkeypatch)
    inventory_access.clear_cache()


class TestToken:
    """The token is on stdout alone; the audit log says who made one, never the token."""

    def test_issue_and_replace(self, cli: CliDb, engine: Engine) -> None:
        first = cli.invoke(app, "token", str(BOB))
        assert first.exit_code == 0, first.output
        token = first.stdout.strip()
        assert token.startswith("chfw_su_")
        assert "shown once" in first.stderr
        with engine.connect() as conn:
            assert inventory_access.authenticate(conn, token) == BOB

        second = cli.invoke(app, "token", str(BOB))
        assert second.exit_code == 0, second.output
        assert "previous one is refused" in second.stderr
        with engine.connect() as conn:
            assert inventory_access.authenticate(conn, token) is None
            assert inventory_access.authenticate(conn, second.stdout.strip()) == BOB
            entries = [e for e in audit.list_recent(conn) if e.action == "users.token"]
        assert [e.detail for e in entries] == [
            {"user_id": str(BOB), "replaced": True},
            {"user_id": str(BOB), "replaced": False},
        ]
        assert all(token not in str(e.detail) for e in entries)

    def test_unregistered_user(self, cli: CliDb) -> None:
        result = cli.invoke(app, "token", str(CAROL))
        assert result.exit_code == 1
        assert "not registered" in result.stderr

    def test_bad_user_id(self, cli: CliDb) -> None:
        result = cli.invoke(app, "token", "bob")
        assert result.exit_code == 1
        assert "User ID" in result.stderr
