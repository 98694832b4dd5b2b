"""`chfw receiver`: hub, alerts, document, rejections on a filled database; serve as a process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from chfw.cli import app
from chfw.core.domain import FirmwareVersion
from chfw.shared.db.engine import display_url
from chfw.supplier import backoffice
from chfw.supplier.pipeline import AlertReceiver, ReceiverConfig
from tests.cli.dbcli import cli_db
from tests.receiver_process import VENV_CHFW, receiver_process
from tests.supplier.helpers import CH, CH2, POWER_OUTAGE, T0, Dsp, free_port

DSP = Dsp.create("CLI test DSP")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["receiver", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Undo an earlier CLI run's structlog set-up (it writes to CliRunner's stderr, now closed)."""
    structlog.reset_defaults()


@pytest.fixture
def filled(engine: Engine, database_url: str) -> dict[str, bytes]:
    """A back office that received two N64s out of order, an N12 and one forged alert."""
    receiver = AlertReceiver(ReceiverConfig(trust=DSP.trust), engine)
    bodies = {
        "newer": DSP.n64("02010400", at=T0 + timedelta(hours=1)),
        "older": DSP.n64("02010300", at=T0),
        "other": DSP.other("N12", POWER_OUTAGE),
    }
    for body in bodies.values():
        assert receiver.receive(body, "127.0.0.1").accepted
    assert receiver.receive(bodies["older"]).duplicate
    forged = DSP.n64("02010500").replace(b"02010500", b"02010600")
    assert receiver.receive(forged, "10.1.2.3").status == 400
    return bodies


class TestHub:
    """`hub CH --json` prints device_id, active_firmware_version and one history entry per alert."""

    def test_json(self, filled: dict[str, bytes], database_url: str) -> None:
        code, output = _run("hub", str(CH), "--json", "--database", database_url)
        assert code == 0, output
        data = json.loads(output)
        assert data["device_id"] == str(CH)
        assert data["active_firmware_version"] == "02010400"
        assert [e["firmware_version"] for e in data["history"]] == ["02010300", "02010400"]
        assert [e["applied"] for e in data["history"]] == [False, True]

    def test_table(self, filled: dict[str, bytes], database_url: str) -> None:
        code, output = _run("hub", "001DA10000000042", "--database", database_url)
        assert code == 0, output
        assert "firmware 02010400" in output
        assert "no (older)" in output

    def test_unknown_hub_exits_1(self, filled: dict[str, bytes], database_url: str) -> None:
        code, output = _run("hub", str(CH2), "--json", "--database", database_url)
        assert code == 1
        assert f"no firmware alert has been received for CH {CH2}" in output

    def test_malformed_id_exits_1(self, database_url: str) -> None:
        code, output = _run("hub", "not-a-ch", "--database", database_url)
        assert code == 1
        assert "Device ID 'not-a-ch'" in output

    def test_database_defaults_to_settings(
        self,
        filled: dict[str, bytes],
        database_url: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from chfw.cli.receiver import app as receiver_app

        result = cli_db(database_url, tmp_path, monkeypatch).invoke(
            receiver_app, "hub", str(CH), "--json"
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["active_firmware_version"] == "02010400"


class TestAlerts:
    """`alerts` lists every code received, filters by code, and shows raw documents."""

    def test_all_codes(self, filled: dict[str, bytes], database_url: str) -> None:
        code, output = _run("alerts", "--json", "--database", database_url)
        assert code == 0, output
        rows = json.loads(output)
        assert sorted(r["alert_code"] for r in rows) == ["N12", "N64", "N64"]
        assert sum(r["duplicates"] for r in rows) == 1

    def test_filter_and_limit(self, filled: dict[str, bytes], database_url: str) -> None:
        _, output = _run("alerts", "--code", "N12", "--json", "--database", database_url)
        assert [r["alert_code"] for r in json.loads(output)] == ["N12"]
        _, output = _run("alerts", "--limit", "1", "--json", "--database", database_url)
        assert len(json.loads(output)) == 1

    def test_n999_shows_the_version_fetched_and_its_source(
        self, engine: Engine, database_url: str
    ) -> None:
        receiver = AlertReceiver(ReceiverConfig(trust=DSP.trust), engine)
        for hub in (CH, CH2):
            assert receiver.receive(DSP.n999(device=hub)).accepted
        with engine.begin() as conn:
            backoffice.record_fetched_version(conn, CH, FirmwareVersion.parse("0A0B"), T0)
        code, output = _run("alerts", "--code", "N999", "--json", "--database", database_url)
        assert code == 0, output
        shown = {
            r["device_id"]: (r["firmware_version"], r["version_source"]) for r in json.loads(output)
        }
        assert shown == {str(CH): ("0A0B", "inventory"), str(CH2): (None, "unknown")}
        _, table = _run("alerts", "--code", "N999", "--database", database_url)
        assert "inventory" in table
        assert "0A0B" in table

    def test_table(self, filled: dict[str, bytes], database_url: str) -> None:
        code, output = _run("alerts", "--database", database_url)
        assert code == 0, output
        assert "N12" in output
        assert "02010300" in output

    def test_document_is_the_body_received(
        self, filled: dict[str, bytes], database_url: str
    ) -> None:
        _, output = _run("alerts", "--code", "N12", "--json", "--database", database_url)
        (row,) = json.loads(output)
        result = CliRunner().invoke(
            app, ["receiver", "document", row["response_id"], "--database", database_url]
        )
        assert result.exit_code == 0
        assert result.stdout_bytes == filled["other"]

    def test_unknown_document(self, filled: dict[str, bytes], database_url: str) -> None:
        code, output = _run("document", "nope", "--database", database_url)
        assert code == 1
        assert "no alert with ResponseID 'nope'" in output


class TestRejections:
    """`rejections` shows what was refused and why."""

    def test_json(self, filled: dict[str, bytes], database_url: str) -> None:
        code, output = _run("rejections", "--json", "--database", database_url)
        assert code == 0, output
        (row,) = json.loads(output)
        assert row["status_code"] == 400
        assert "digest mismatch" in row["reason"]
        assert row["remote"] == "10.1.2.3"

    def test_table(self, filled: dict[str, bytes], database_url: str) -> None:
        code, output = _run("rejections", "--database", database_url)
        assert code == 0, output
        assert "digest mismatch" in output

    def test_database_without_schema(self, empty_database_url: str) -> None:
        code, output = _run("rejections", "--database", empty_database_url)
        assert code == 1
        assert display_url(empty_database_url) in output  # which database, password hidden
        assert "chfw receiver upgrade --database" in output


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`chfw receiver serve` as a subprocess on a new SQLite file: (alert URL, database URL)."""
    options = ["--duis-version", "5.1", "--path", "/alerts"]
    options += ["--check-threads", "2", "--check-seconds", "5"]
    with receiver_process(tmp_path, DSP.cert_pem, *options) as (base, database):
        yield f"{base}/alerts", database


@pytest.mark.skipif(not VENV_CHFW.exists(), reason="the chfw script is not installed")
class TestServe:
    """`chfw receiver serve` migrates its database, receives alerts and refuses bad ones."""

    def test_receive_over_http(self, served: tuple[str, str]) -> None:
        url, database = served
        headers = {"content-type": "application/xml"}
        body = DSP.n64("0A0B0C0D")
        assert httpx.post(url, content=body, headers=headers).status_code == 204
        assert httpx.post(url, content=body, headers=headers).status_code == 204
        refused = httpx.post(url, content=DSP.n999(duis="5.0"), headers=headers)
        assert refused.status_code == 400
        assert "not this endpoint's DUIS version 5.1" in refused.text
        code, output = _run("hub", str(CH), "--json", "--database", database)
        assert code == 0, output
        data = json.loads(output)
        assert data["active_firmware_version"] == "0A0B0C0D"
        assert len(data["history"]) == 1

    def test_hostile_posts_beside_genuine_ones(self, served: tuple[str, str]) -> None:
        """The 60-byte DOCTYPE that once froze the receiver, and a comment inside a signed
        value, against the real command: refused at once, and recorded as signed."""
        url, database = served
        headers = {"content-type": "application/xml"}
        dev_zero = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///dev/zero"> %p;]><r/>'
        refused = httpx.post(url, content=dev_zero, headers=headers, timeout=10)
        assert (refused.status_code, "DOCTYPE" in refused.text) == (400, True)
        genuine = DSP.n64("0123ABCE")
        injected = genuine.replace(b">0123ABCE<", b">0123<!---->ABCE<")
        assert httpx.post(url, content=injected, headers=headers).status_code == 204
        code, output = _run("hub", str(CH), "--json", "--database", database)
        assert code == 0, output
        assert json.loads(output)["active_firmware_version"] == "0123ABCE"

    def test_refuses_a_check_deadline_of_zero(self, tmp_path: Path) -> None:
        trust = tmp_path / "dsp.pem"
        trust.write_bytes(DSP.cert_pem)
        result = subprocess.run(
            [
                str(VENV_CHFW),
                "receiver",
                "serve",
                "--port",
                str(free_port()),
                "--trust",
                str(trust),
                "--database",
                f"sqlite:///{tmp_path / 'x.db'}",
                "--check-seconds",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1
        assert "check_seconds 0.0 must be more than 0" in result.stderr

    def test_refuses_to_start_without_a_readable_trust_file(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [
                str(VENV_CHFW),
                "receiver",
                "serve",
                "--port",
                str(free_port()),
                "--trust",
                str(tmp_path / "missing.pem"),
                "--database",
                f"sqlite:///{tmp_path / 'x.db'}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1
        assert "missing.pem" in result.stderr
