"""`chfw init` and the commands that name the database: secrets stay out of files others read
and out of what is printed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from chfw.cli import app as chfw_app
from chfw.cli.db import app as db_app
from chfw.shared.db.engine import display_url
from tests.cli.dbcli import CliDb, cli_db

PASSWORD = "pw-never-printed-7f3a"


def with_password(url: str) -> str:
    """``url`` with a password added (the test PostgreSQL trusts local connections, so it is
    accepted and ignored; SQLite has none)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(password=PASSWORD).render_as_string(hide_password=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestInit:
    """chfw.toml and the signing key are owner-only (0600), even when overwritten."""

    def test_config_and_key_are_0600(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        cli = cli_db(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path, monkeypatch)
        result = cli.invoke(chfw_app, "init", "--dir", str(tmp_path / "dsp"))
        assert result.exit_code == 0, result.output
        assert mode(tmp_path / "dsp" / "chfw.toml") == 0o600
        assert mode(tmp_path / "dsp" / "keys" / "signing-key.pem") == 0o600

    def test_overwritten_config_is_set_back_to_0600(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        folder = tmp_path / "dsp"
        folder.mkdir()
        (folder / "chfw.toml").write_text("# old\n")
        (folder / "chfw.toml").chmod(0o644)
        cli = cli_db(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path, monkeypatch)
        result = cli.invoke(chfw_app, "init", "--dir", str(folder), "--force")
        assert result.exit_code == 0, result.output
        assert mode(folder / "chfw.toml") == 0o600


class TestNoPasswordPrinted:
    """A database URL with a password is shown without it by every command that names it."""

    def test_init(
        self, empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = with_password(empty_database_url)
        cli = cli_db(url, tmp_path, monkeypatch)
        result = cli.invoke(chfw_app, "init", "--dir", str(tmp_path / "dsp"), "--database-url", url)
        assert result.exit_code == 0, result.output
        assert PASSWORD not in result.output
        assert f"database {display_url(url)} at revision" in result.output

    def test_db_upgrade_and_current(
        self, empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cli: CliDb = cli_db(with_password(empty_database_url), tmp_path, monkeypatch)
        for command in ("upgrade", "current"):
            result = cli.invoke(db_app, command)
            assert result.exit_code == 0, result.output
            assert PASSWORD not in result.output

    def test_display_url_masks_the_password(self) -> None:
        shown = display_url(f"postgresql://chfw:{PASSWORD}@db.example/chfw")
        assert PASSWORD not in shown
        assert shown == "postgresql://chfw:***@db.example/chfw"

    def test_display_url_of_nonsense_is_not_echoed(self) -> None:
        assert display_url(f"::{PASSWORD}") == "<unparsable database URL>"
