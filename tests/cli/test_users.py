"""`chfw users`: register Service Users and change them, with an audit trail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli.users import app
from chfw.core.domain import DuisVersion, UserId
from chfw.dsp.store import audit, users
from tests.cli.dbcli import CliDb, cli_db

ALICE = "90-B3-D5-1F-30-01-00-00"


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


def add_alice(cli: CliDb, *extra: str) -> None:
    result = cli.invoke(
        app,
        "add",
        ALICE,
        "--name",
        "Alice Energy",
        "--roles",
        "IS,GS",
        "--duis-version",
        "5.1",
        *extra,
    )
    assert result.exit_code == 0, result.output


class TestAdd:
    """add registers a user with every option, and refuses bad ones cleanly."""

    def test_add_with_all_options(self, cli: CliDb, engine: Engine) -> None:
        add_alice(
            cli,
            "--endpoint",
            "https://alice.example/duis",
            "--ca-bundle",
            "/ca.pem",
            "--client-cert",
            "/c.pem",
            "--client-key",
            "/k.pem",
            "--max-in-flight",
            "4",
        )
        with engine.connect() as conn:
            user = users.get_user(conn, UserId.parse(ALICE))
            (entry,) = audit.list_recent(conn)
        assert user is not None
        assert (user.roles, user.duis_version) == (frozenset({"IS", "GS"}), DuisVersion(5, 1))
        assert (user.tls_ca_bundle, user.tls_client_cert, user.max_in_flight) == (
            "/ca.pem",
            "/c.pem",
            4,
        )
        assert entry.action == "users.add"
        assert entry.detail["user_id"] == ALICE

    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            (["--roles", "XX"], "unknown User Role"),
            (["--duis-version", "4.9"], "not supported"),
            (["--endpoint", "mailto:x"], "http(s)"),
            (["--client-cert", "/c.pem"], "both"),
        ],
    )
    def test_bad_values(self, cli: CliDb, args: list[str], fragment: str) -> None:
        base = {"--name": "A", "--roles": "IS", "--duis-version": "5.1"}
        for flag, value in zip(args[::2], args[1::2], strict=True):
            base[flag] = value
        flat = [item for pair in base.items() for item in pair]
        result = cli.invoke(app, "add", ALICE, *flat)
        assert result.exit_code == 1
        assert fragment in result.output
        assert "Traceback" not in result.output

    def test_bad_user_id(self, cli: CliDb) -> None:
        result = cli.invoke(
            app, "add", "nope", "--name", "A", "--roles", "IS", "--duis-version", "5.1"
        )
        assert result.exit_code == 1
        assert "User ID 'nope'" in result.output

    def test_duplicate(self, cli: CliDb) -> None:
        add_alice(cli)
        result = cli.invoke(
            app, "add", ALICE, "--name", "B", "--roles", "IS", "--duis-version", "5.1"
        )
        assert result.exit_code == 1
        assert "already exists" in result.output


class TestListAndChange:
    """list shows users; set-duis and set-endpoint change them and are audited."""

    def test_list_json_and_table(self, cli: CliDb) -> None:
        empty = cli.invoke(app, "list")
        add_alice(cli)
        as_json = cli.invoke(app, "list", "--json")
        table = cli.invoke(app, "list")
        assert "no Service Users" in empty.output
        assert json.loads(as_json.output)[0]["user_id"] == ALICE
        assert json.loads(as_json.output)[0]["roles"] == ["GS", "IS"]
        assert ALICE in table.output
        assert "Alice Energy" in table.output

    def test_the_table_is_never_cut_off_a_terminal(self, cli: CliDb) -> None:
        """CliRunner's stdout is not a terminal: a script reading `users list` gets every
        character, however wide the table (issue 23: User IDs cut at 80 columns)."""
        long_name = "Alice Energy " + "x" * 150
        endpoint = "https://alerts.alice-energy.example/duis/" + "y" * 150
        result = cli.invoke(
            app,
            "add",
            ALICE,
            "--name",
            long_name,
            "--roles",
            "IS,GS",
            "--duis-version",
            "5.1",
            "--endpoint",
            endpoint,
        )
        assert result.exit_code == 0, result.output
        table = cli.invoke(app, "list")
        assert table.exit_code == 0, table.output
        assert ALICE in table.stdout
        assert long_name in table.stdout
        assert endpoint in table.stdout
        assert "…" not in table.stdout

    def test_set_duis(self, cli: CliDb, engine: Engine) -> None:
        add_alice(cli)
        result = cli.invoke(app, "set-duis", ALICE, "5.0")
        assert result.exit_code == 0, result.output
        assert "5.1 -> 5.0" in result.output
        with engine.connect() as conn:
            assert users.duis_versions_for(conn, [UserId.parse(ALICE)]) == {
                UserId.parse(ALICE): DuisVersion(5, 0)
            }
            entry = audit.list_recent(conn, 1)[0]
        assert (entry.action, entry.detail["before"], entry.detail["after"]) == (
            "users.set-duis",
            "5.1",
            "5.0",
        )

    def test_set_endpoint(self, cli: CliDb, engine: Engine) -> None:
        add_alice(cli)
        result = cli.invoke(app, "set-endpoint", ALICE, "https://alice.example/alerts")
        assert result.exit_code == 0, result.output
        with engine.connect() as conn:
            user = users.get_user(conn, UserId.parse(ALICE))
            entry = audit.list_recent(conn, 1)[0]
        assert user is not None
        assert user.endpoint_url == "https://alice.example/alerts"
        assert entry.action == "users.set-endpoint"

    def test_plain_http_needs_the_flag(self, cli: CliDb, engine: Engine) -> None:
        add_alice(cli)
        url = "http://127.0.0.1:8999/alerts"
        refused = cli.invoke(app, "set-endpoint", ALICE, url)
        assert refused.exit_code == 1
        assert len(refused.output.strip().splitlines()) == 1
        assert "plain http" in refused.output
        assert "--allow-insecure-http" in refused.output
        allowed = cli.invoke(app, "set-endpoint", ALICE, url, "--allow-insecure-http")
        assert allowed.exit_code == 0, allowed.output
        with engine.connect() as conn:
            user = users.get_user(conn, UserId.parse(ALICE))
        assert user is not None
        assert user.endpoint_url == url
        assert user.allow_insecure_http
        listed = cli.invoke(app, "list", "--json")
        assert '"allow_insecure_http": true' in listed.output

    def test_set_in_flight_and_back_to_the_default(self, cli: CliDb, engine: Engine) -> None:
        add_alice(cli)
        with engine.connect() as conn:
            user = users.get_user(conn, UserId.parse(ALICE))
        assert user is not None
        assert user.max_in_flight is None

        assert cli.invoke(app, "set-in-flight", ALICE, "4").exit_code == 0
        with engine.connect() as conn:
            user = users.get_user(conn, UserId.parse(ALICE))
        assert user is not None
        assert user.max_in_flight == 4
        listed = cli.invoke(app, "list", "--json")
        assert json.loads(listed.output)[0]["max_in_flight"] == 4

        result = cli.invoke(app, "set-in-flight", ALICE, "default")
        assert result.exit_code == 0, result.output
        assert "4 -> default" in result.output
        with engine.connect() as conn:
            user = users.get_user(conn, UserId.parse(ALICE))
            entry = audit.list_recent(conn, 1)[0]
        assert user is not None
        assert user.max_in_flight is None
        assert (entry.action, entry.detail["before"], entry.detail["after"]) == (
            "users.set-in-flight",
            4,
            None,
        )

    @pytest.mark.parametrize("limit", ["0", "-3", "many", "2.5"])
    def test_set_in_flight_refuses_nonsense(self, cli: CliDb, limit: str) -> None:
        add_alice(cli)
        result = cli.invoke(app, "set-in-flight", ALICE, limit)
        assert result.exit_code != 0
        assert "in-flight limit" in result.output or "Usage" in result.output

    def test_changing_unknown_user_is_clean_and_not_audited(
        self, cli: CliDb, engine: Engine
    ) -> None:
        result = cli.invoke(app, "set-duis", ALICE, "5.2")
        assert result.exit_code == 1
        assert "not registered" in result.output
        with engine.connect() as conn:
            assert audit.list_recent(conn) == []


class TestUnmigratedDatabase:
    """A database without the schema gets a message that says what to run."""

    def test_points_at_db_upgrade(self, tmp_path: Path) -> None:
        result = CliDb(f"sqlite:///{tmp_path / 'empty.db'}").invoke(app, "list")
        assert result.exit_code == 1
        assert "chfw db upgrade" in result.output
        assert "Traceback" not in result.output


class TestAddPlainHttp:
    """add refuses a plain http endpoint in one line unless --allow-insecure-http is given."""

    def test_refused_then_allowed(self, cli: CliDb, engine: Engine) -> None:
        url = "http://127.0.0.1:8999/alerts"
        args = ("add", ALICE, "--name", "Alice", "--roles", "IS", "--duis-version", "5.1")
        refused = cli.invoke(app, *args, "--endpoint", url)
        assert refused.exit_code == 1
        assert refused.output.startswith("error: endpoint 'http://127.0.0.1:8999/alerts' is plain")
        assert len(refused.output.strip().splitlines()) == 1
        with engine.connect() as conn:
            assert users.get_user(conn, UserId.parse(ALICE)) is None
        allowed = cli.invoke(app, *args, "--endpoint", url, "--allow-insecure-http")
        assert allowed.exit_code == 0, allowed.output
