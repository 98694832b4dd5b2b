"""`chfw csp`: credentials are printed once and work at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli.csp import app
from chfw.dsp.store import audit, csps
from tests.cli.dbcli import CliDb, cli_db


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliDb]:
    csps.clear_cache()
    yield cli_db(database_url, tmp_path, monkeypatch)
    csps.clear_cache()


class TestAdd:
    """add prints the credential alone on stdout, and a warning on stderr."""

    def test_credential_printed_once_and_valid(self, cli: CliDb, engine: Engine) -> None:
        result = cli.invoke(app, "add", "csp-north")
        assert result.exit_code == 0, result.output
        credential = result.stdout.strip()
        assert credential.startswith("chfw_csp_")
        assert "not be shown again" in result.stderr or "cannot be shown again" in result.stderr
        with engine.connect() as conn:
            assert csps.authenticate(conn, credential) == "csp-north"
            assert audit.list_recent(conn)[0].action == "csp.add"
        listed = cli.invoke(app, "list")
        assert "csp-north" in listed.output
        assert credential not in listed.output

    def test_duplicate_and_bad_name(self, cli: CliDb) -> None:
        cli.invoke(app, "add", "csp-north")
        again = cli.invoke(app, "add", "csp-north")
        bad = cli.invoke(app, "add", "no;good")
        assert (again.exit_code, bad.exit_code) == (1, 1)
        assert "already exists" in again.output
        assert "CSP name" in bad.output


class TestDisableAndRotate:
    """disable refuses the credential; rotate issues a working new one."""

    def test_disable_then_rotate(self, cli: CliDb, engine: Engine) -> None:
        old = cli.invoke(app, "add", "csp-south").stdout.strip()
        disabled = cli.invoke(app, "disable", "csp-south")
        listed = json.loads(cli.invoke(app, "list", "--json").stdout)
        rotated = cli.invoke(app, "rotate", "csp-south")
        new = rotated.stdout.strip()
        assert disabled.exit_code == 0, disabled.output
        assert listed[0]["enabled"] is False
        assert rotated.exit_code == 0, rotated.output
        with engine.connect() as conn:
            assert csps.authenticate(conn, old) is None
            assert csps.authenticate(conn, new) == "csp-south"

    def test_rotation_keeps_the_old_credential_for_the_grace_period(
        self, cli: CliDb, engine: Engine
    ) -> None:
        old = cli.invoke(app, "add", "csp-north").stdout.strip()
        rotated = cli.invoke(app, "rotate", "csp-north")  # the default: 10 minutes
        assert rotated.exit_code == 0, rotated.output
        assert "the old one is accepted until" in rotated.stderr
        csps.clear_cache()
        with engine.connect() as conn:
            assert csps.authenticate(conn, old) == "csp-north"
            entry = audit.list_recent(conn, 1)[0]
        assert entry.detail == {"name": "csp-north", "grace_seconds": 600.0}
        leaked = cli.invoke(app, "rotate", "csp-north", "--grace", "0")
        assert "the old one is refused now" in leaked.stderr
        csps.clear_cache()
        with engine.connect() as conn:
            assert csps.authenticate(conn, rotated.stdout.strip()) is None

    def test_unknown_csp(self, cli: CliDb) -> None:
        result = cli.invoke(app, "disable", "nobody")
        assert result.exit_code == 1
        assert "not registered" in result.output

    def test_empty_list(self, cli: CliDb) -> None:
        assert "no CSPs registered" in cli.invoke(app, "list").output
