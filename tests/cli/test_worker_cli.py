"""`chfw worker`: drain the outbox from the command line and report what happened."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy.engine import Engine

from chfw.cli.worker import worker
from chfw.dsp.store import outbox
from tests.cli.dbcli import CliDb, cli_db
from tests.dsp.delivery.helpers import HUB_2, SUPPLIER_A, add_user, alert, enqueue
from tests.dsp.delivery.receiver import ScriptedReceiver

app = typer.Typer()
app.command()(worker)


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    return cli_db(database_url, tmp_path, monkeypatch)


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    server = ScriptedReceiver().start()
    yield server
    server.stop()


class TestOnce:
    """--once delivers what is due, prints a summary and says what is still waiting."""

    def test_drains(self, cli: CliDb, engine: Engine, receiver: ScriptedReceiver) -> None:
        add_user(engine, SUPPLIER_A, receiver.url())
        enqueue(engine, [alert("R-1"), alert("R-2", hub=HUB_2)], datetime.now(UTC))
        result = cli.invoke(app, "--once", "--batch-size", "1")
        assert result.exit_code == 0, result.output
        assert "delivered 2, retried 0, dead 0" in result.stdout
        assert "still pending" not in result.stdout
        assert len(receiver.received) == 2
        with engine.connect() as conn:
            assert outbox.counts(conn)["delivered"] == 2

    def test_reports_what_waits(
        self,
        cli: CliDb,
        engine: Engine,
        receiver: ScriptedReceiver,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("CHFW_RETRY_INITIAL_SECONDS", "3600")  # the retry is not due this run
        add_user(engine, SUPPLIER_A, receiver.url())
        enqueue(engine, [alert("R-1")], datetime.now(UTC))
        receiver.script(503)
        result = cli.invoke(app, "--until-idle")
        assert result.exit_code == 0, result.output
        assert "retried 1" in result.stdout
        assert "1 alert(s) still pending (1 retrying); next attempt due at" in result.stdout

    def test_unmigrated_database(
        self, empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cli = cli_db(empty_database_url, tmp_path, monkeypatch)
        result = cli.invoke(app, "--once")
        assert result.exit_code == 1
        assert "chfw db upgrade" in result.stderr
        assert "Traceback" not in result.output

    def test_bad_settings(self, cli: CliDb, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CHFW_RETRY_INITIAL_SECONDS", "0")
        result = cli.invoke(app, "--once")
        assert result.exit_code == 1
        assert "setting retry_initial_seconds = 0.0 is out of range" in result.stderr


class TestProxy:
    """The worker connects to endpoints directly: a proxy in the environment is refused at
    start, in one line, rather than silently bypassed."""

    @pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
    def test_proxy_is_refused_at_start(
        self,
        cli: CliDb,
        engine: Engine,
        receiver: ScriptedReceiver,
        monkeypatch: pytest.MonkeyPatch,
        variable: str,
    ) -> None:
        monkeypatch.setenv(variable, "http://proxy.example:3128")
        add_user(engine, SUPPLIER_A, receiver.url())
        enqueue(engine, [alert("R-1")], datetime.now(UTC))
        result = cli.invoke(app, "--once")
        assert result.exit_code == 1
        (line,) = [line for line in result.stderr.splitlines() if "proxies" in line]
        assert f"{variable} is set" in line
        assert f"unset {variable}" in line
        assert "Traceback" not in result.output
        assert receiver.received == []
