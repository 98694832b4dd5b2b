"""Issue 20 item 5: a DUIS version without schema fails at start, not in a batch.

With official schemas configured (a temporary folder holding copies of some of
DCC's version folders), a Service User on a version without a folder stops
`chfw serve` and `chfw worker` from starting and is refused by `chfw users
add|set-duis`. If a version loses its schema at run time anyway, one served
batch over several CHs answers normally: the outcome is recorded, the other
recipients' alerts are built, and the one alert concerned is parked -- listed,
counted, on the dashboard and in /metrics -- until `chfw outbox retry` builds it
once the folder is back, and the worker delivers it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import typer
from sqlalchemy.engine import Engine

from chfw.cli.outbox import app as outbox_app
from chfw.cli.serve import serve
from chfw.cli.users import app as users_app
from chfw.cli.worker import worker
from chfw.core.domain import ActivationResult, DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.core.duis import SchemaSet, official_schemas
from chfw.core.gbcs import encode_response
from chfw.core.signing import verify_document
from chfw.dsp.alerts import AlertBuilder
from chfw.dsp.intake import create_app
from chfw.dsp.processing import ActivationService
from chfw.dsp.store import csps, inventory, outbox, users
from chfw.shared.config import Settings
from tests.cli.dbcli import CliDb, cli_db
from tests.cli.test_serve import signing_files
from tests.dsp.delivery.receiver import ScriptedReceiver
from tests.dsp.intake.server import running
from tests.small_dsp import (
    ALICE,
    BOB,
    CH1,
    CH2,
    DCC,
    SIGNER,
    TRUST,
    Dsp,
    Sequential,
    build_dsp,
)

NEW = FirmwareVersion.parse("02010300")
TOKEN = "parked-test-dashboard-token-0123456789"

serve_app = typer.Typer()
serve_app.command()(serve)
worker_app = typer.Typer()
worker_app.command()(worker)


def schema_folder(dcc_reference: Path, into: Path, *versions: str) -> Path:
    """A duis_xsd_dir holding copies of DCC's folders for ``versions`` only (at test time,
    in tmp_path: DCC's files are never copied into the repository)."""
    into.mkdir(parents=True, exist_ok=True)
    for version in versions:
        add_version(dcc_reference, into, version)
    return into


def add_version(dcc_reference: Path, folder: Path, version: str) -> None:
    shutil.copytree(dcc_reference / "xsd" / version, folder / version)


def cs06(device: DeviceId, counter: int) -> str:
    return encode_response(
        device_id=device,
        recipient=ALICE,
        counter=counter,
        result=ActivationResult.SUCCESS,
        firmware_version=NEW,
    ).hex()


@pytest.fixture
def cli(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliDb:
    for name, value in signing_files(tmp_path).items():
        monkeypatch.setenv(name, value)
    return cli_db(database_url, tmp_path, monkeypatch)


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    server = ScriptedReceiver().start()
    yield server
    server.stop()


class TestRefusedAtStart:
    """A user on DUIS 5.2 while only 5.0 and 5.1 are installed."""

    @pytest.fixture
    def on_52(
        self,
        cli: CliDb,
        engine: Engine,
        dcc_reference: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> CliDb:
        folder = schema_folder(dcc_reference, tmp_path / "xsd", "5.0", "5.1")
        monkeypatch.setenv("CHFW_DUIS_XSD_DIR", str(folder))
        build_dsp(engine)  # ALICE on 5.1, BOB on 5.0: both installed
        with engine.begin() as conn:
            users.set_duis_version(conn, BOB, DuisVersion(5, 2))
        return cli

    def test_serve_refuses_naming_user_and_version(self, on_52: CliDb) -> None:
        result = on_52.invoke(serve_app, "--port", "1")
        assert result.exit_code == 1, result.output
        assert f"Service User {BOB} (Bob Gas) on DUIS 5.2" in result.stderr
        assert "no official DUIS 5.2 schemas" in result.stderr
        assert str(ALICE) not in result.stderr
        assert "Traceback" not in result.output

    def test_worker_refuses_naming_user_and_version(self, on_52: CliDb) -> None:
        result = on_52.invoke(worker_app, "--until-idle")
        assert result.exit_code == 1, result.output
        assert f"Service User {BOB} (Bob Gas) on DUIS 5.2" in result.stderr
        assert "delivered" not in result.stdout

    def test_both_start_once_the_user_is_moved(self, on_52: CliDb, engine: Engine) -> None:
        moved = on_52.invoke(users_app, "set-duis", str(BOB), "5.1")
        assert moved.exit_code == 0, moved.output
        result = on_52.invoke(worker_app, "--until-idle")
        assert result.exit_code == 0, result.output

    def test_users_set_duis_refuses_a_version_without_schema(
        self, on_52: CliDb, engine: Engine
    ) -> None:
        result = on_52.invoke(users_app, "set-duis", str(ALICE), "5.4")
        assert result.exit_code == 1
        assert "DUIS 5.4 cannot be used here" in result.stderr
        assert "no official DUIS 5.4 schemas" in result.stderr
        with engine.connect() as conn:
            alice = users.get_user(conn, ALICE)
        assert alice is not None
        assert alice.duis_version == DuisVersion(5, 1)

    def test_users_add_refuses_a_version_without_schema(self, on_52: CliDb, engine: Engine) -> None:
        dave = "90-B3-D5-1F-30-01-00-09"
        args = ("add", dave, "--name", "Dave", "--roles", "IS", "--duis-version")
        refused = on_52.invoke(users_app, *args, "5.3")
        assert refused.exit_code == 1
        assert "DUIS 5.3 cannot be used here" in refused.stderr
        with engine.connect() as conn:
            assert users.get_user(conn, UserId.parse(dave)) is None
        assert on_52.invoke(users_app, *args, "5.1").exit_code == 0


@dataclass(frozen=True)
class BobOnMissingSchema:
    """A DSP whose official schemas hold 5.0 and 5.1 only, BOB moved to 5.4 behind the checks."""

    folder: Path
    dsp: Dsp
    schemas: SchemaSet
    service: ActivationService


@pytest.fixture
def bob_on_54(
    engine: Engine,
    dcc_reference: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: ScriptedReceiver,
) -> BobOnMissingSchema:
    folder = schema_folder(dcc_reference, tmp_path / "xsd", "5.0", "5.1")
    monkeypatch.setenv("CHFW_DUIS_XSD_DIR", str(folder))
    csps.clear_cache()
    dsp = build_dsp(engine, {ALICE: receiver.url(), BOB: receiver.url()})
    # BOB's version changes behind the checks (e.g. the database edited by hand):
    # 5.4, whose folder is not installed.
    with engine.begin() as conn:
        users.set_duis_version(conn, BOB, DuisVersion(5, 4))
    schemas = official_schemas(folder)
    builder = AlertBuilder(DCC, SIGNER, schemas)
    service = ActivationService(engine, builder, Sequential())
    return BobOnMissingSchema(folder, dsp, schemas, service)


class TestParkedAtRunTime:
    def test_one_batch_answers_the_bad_alert_parks_and_a_retry_delivers_it(
        self,
        cli: CliDb,
        engine: Engine,
        dcc_reference: Path,
        receiver: ScriptedReceiver,
        bob_on_54: BobOnMissingSchema,
    ) -> None:
        folder, dsp, schemas, service = (
            bob_on_54.folder,
            bob_on_54.dsp,
            bob_on_54.schemas,
            bob_on_54.service,
        )
        settings = Settings(dashboard_token=TOKEN, stats_cache_seconds=0)

        with running(create_app(settings, service)) as (host, port):
            base = f"http://{host}:{port}"
            answer = httpx.post(
                f"{base}/csp/v1/messages/batch",
                json={"messages": [cs06(CH1, 11), cs06(CH2, 12)]},
                headers={"authorization": f"Bearer {dsp.credential}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            ch1, ch2 = answer.json()["results"]
            # CH1: ALICE's N64 built, BOB's parked; the outcome is recorded.
            assert ch1["status"] == ch2["status"] == "processed"
            assert ch1["decision"] == ch2["decision"] == "new_version"
            assert ch1["alerts"] == {"N64": 1, "N999": 0}
            assert ch2["alerts"] == {"N64": 1, "N999": 0}
            (warning,) = ch1["warnings"]
            assert f"N64 for {BOB} (DUIS 5.4) parked" in warning
            assert "no official DUIS 5.4 schemas" in warning
            assert "warnings" not in ch2

            # Visible: /metrics and the dashboard count it.
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            assert (
                f'chfw_outbox_alerts{{alert_code="N64",state="parked",user_id="{BOB.hex}"}} 1.0'
                in metrics
            )
            page = httpx.get(
                f"{base}/dashboard",
                headers={"authorization": f"Bearer {TOKEN}"},
                timeout=10,
                follow_redirects=True,
            )
            assert page.status_code == 200
            assert "Alerts parked" in page.text

        with engine.connect() as conn:
            assert "parked" in (inventory.history_for(conn, CH1)[-1].note or "")
            counts = outbox.counts(conn)
            assert (counts["pending"], counts["parked"]) == (2, 1)

        listed = cli.invoke(outbox_app, "list", "--state", "parked", "--json")
        assert listed.exit_code == 0, listed.output
        (row,) = json.loads(listed.stdout)
        assert row["user_id"] == str(BOB)
        assert row["device_id"] == str(CH1)
        assert row["duis_version"] == "5.4"
        assert row["document_bytes"] == 0
        assert "no official DUIS 5.4 schemas" in row["last_error"]

        # A worker (re)started now refuses: BOB is on a version without schema.
        delivered = cli.invoke(worker_app, "--until-idle")
        assert delivered.exit_code == 1
        assert f"{BOB} (Bob Gas) on DUIS 5.4" in delivered.stderr

        # Still missing: a retry leaves it parked and says why.
        again = cli.invoke(outbox_app, "retry", "--all-parked")
        assert again.exit_code == 1
        assert f"row {row['id']} still parked" in again.stderr

        # Fixed: the folder is installed; the retry builds it, the worker delivers it.
        add_version(dcc_reference, folder, "5.4")
        built = cli.invoke(outbox_app, "retry", row["response_id"])
        assert built.exit_code == 0, built.output
        assert "1 parked row(s) built, due now" in built.stdout
        delivered = cli.invoke(worker_app, "--until-idle")
        assert delivered.exit_code == 0, delivered.output
        assert "delivered 3" in delivered.stdout
        bodies = receiver.bodies()
        assert len(bodies) == 3
        mine = [b for b in bodies if row["response_id"].encode() in b]
        assert len(mine) == 1
        verify_document(mine[0], TRUST)
        schemas.validate(mine[0], DuisVersion(5, 4))
        with engine.connect() as conn:
            detail = outbox.get(conn, row["id"])
        assert detail is not None
        assert detail.row.state == "delivered"
        assert detail.row.last_error is None


class TestSuperseded:
    """A parked alert whose version the CH no longer runs is not sent when built later."""

    def test_only_the_newest_version_goes_out(
        self,
        cli: CliDb,
        engine: Engine,
        dcc_reference: Path,
        receiver: ScriptedReceiver,
        bob_on_54: BobOnMissingSchema,
    ) -> None:
        folder, service = bob_on_54.folder, bob_on_54.service
        newer = FirmwareVersion.parse("02010400")
        older = encode_response(
            device_id=CH1,
            recipient=ALICE,
            counter=1,
            result=ActivationResult.SUCCESS,
            firmware_version=NEW,
        )
        later = encode_response(
            device_id=CH1,
            recipient=ALICE,
            counter=2,
            result=ActivationResult.SUCCESS,
            firmware_version=newer,
        )
        service.submit([older], "north")
        service.submit([later], "north")  # BOB's alerts for both versions are parked

        add_version(dcc_reference, folder, "5.4")
        built = cli.invoke(outbox_app, "retry", "--all-parked")
        assert built.exit_code == 0, built.output
        assert "1 parked row(s) built, due now" in built.stdout
        assert "superseded" in built.stdout
        assert cli.invoke(worker_app, "--until-idle").exit_code == 0
        to_bob = [b for b in receiver.bodies() if b'schemaVersion="5.4"' in b]  # BOB is on 5.4
        assert len(to_bob) == 1
        assert newer.hex.encode() in to_bob[0]
        with engine.connect() as conn:
            rows = outbox.list_rows(conn, state="parked")
        assert [r.firmware_version for r in rows] == [NEW.hex]
