"""`chfw users set-tls`: an existing user's CA bundle and client certificate change, audited,
and the worker uses them from the next alert on (issue 23, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from chfw.cli.users import app
from chfw.dsp.store import audit
from chfw.shared.config import Settings
from tests.cli.dbcli import CliDb, cli_db
from tests.dsp.delivery.conftest import FakeClock, Pki, clock, pki, tls_receiver  # noqa: F401
from tests.dsp.delivery.helpers import SUPPLIER_A, add_user, alert, drain, enqueue
from tests.dsp.delivery.receiver import ScriptedReceiver

USER = str(SUPPLIER_A)


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


def listed(cli: CliDb) -> dict[str, object]:
    result = cli.invoke(app, "list", "--json")
    assert result.exit_code == 0, result.output
    (user,) = json.loads(result.stdout)
    return dict(user)


class TestSetTls:
    def test_a_wrong_trust_file_fixed_then_delivered(
        self,
        cli: CliDb,
        engine: Engine,
        database_url: str,
        pki: Pki,  # noqa: F811
        tls_receiver: ScriptedReceiver,  # noqa: F811
        clock: FakeClock,  # noqa: F811
    ) -> None:
        add_user(
            engine,
            SUPPLIER_A,
            tls_receiver.url(),
            ca_bundle=str(pki.other_ca),  # the supplier sent the wrong CA
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
        enqueue(engine, [alert("R-1")], clock.now)
        settings = Settings(database_url=database_url, worker_poll_seconds=0.01)
        assert drain(engine, settings, clock).retried == 1  # TLS verification failed

        result = cli.invoke(app, "set-tls", USER, "--ca-bundle", str(pki.ca))
        assert result.exit_code == 0, result.output
        user = listed(cli)
        assert user["tls_ca_bundle"] == str(pki.ca.resolve())
        assert user["tls_client_cert"] == str(pki.client_cert)  # kept
        with engine.connect() as conn:
            entry = audit.list_recent(conn, 1)[0]
        assert entry.action == "users.set-tls"
        assert entry.detail["before"]["ca_bundle"] == str(pki.other_ca)

        clock.advance(3600)
        assert drain(engine, settings, clock).delivered == 1
        assert tls_receiver.received

    def test_back_to_defaults(self, cli: CliDb, engine: Engine, pki: Pki) -> None:  # noqa: F811
        add_user(
            engine,
            SUPPLIER_A,
            "https://a.example/duis",
            ca_bundle=str(pki.ca),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
        result = cli.invoke(app, "set-tls", USER, "--system-ca", "--no-client-cert")
        assert result.exit_code == 0, result.output
        user = listed(cli)
        assert (user["tls_ca_bundle"], user["tls_client_cert"], user["tls_client_key"]) == (
            None,
            None,
            None,
        )

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            ([], "nothing to change"),
            (["--client-cert", "x.pem"], "together"),
            (["--ca-bundle", "/nonexistent/ca.pem"], "CA bundle /nonexistent/ca.pem"),
        ],
    )
    def test_refused(self, cli: CliDb, engine: Engine, args: list[str], words: str) -> None:
        add_user(engine, SUPPLIER_A, "https://a.example/duis")
        result = cli.invoke(app, "set-tls", USER, *args)
        assert result.exit_code == 1
        assert words in result.stderr

    def test_unknown_user(self, cli: CliDb, pki: Pki) -> None:  # noqa: F811
        result = cli.invoke(app, "set-tls", USER, "--ca-bundle", str(pki.ca))
        assert result.exit_code == 1
        assert "not registered" in result.stderr
