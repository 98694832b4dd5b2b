"""Issue 20 item 3: an outcome for a CH not in the estate yet is parked, not lost.

Through the served intake (HTTP in), the real `chfw estate import` and `chfw
parked list`, and a worker delivering over HTTPS: the outcome is answered
``parked`` (202; in a batch, per message), kept once however often it is
sent, listed and counted, and processed -- in the order received, with the
alerts it causes -- by the import that adds its CH; a re-send after that is a
duplicate, and outcomes of CHs still unknown stay parked.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import typer
from sqlalchemy.engine import Engine

from chfw.cli.estate import app as estate_app
from chfw.cli.parked import app as parked_app
from chfw.cli.worker import worker
from chfw.core.domain import ActivationResult, DeviceId, FirmwareVersion
from chfw.core.gbcs import encode_response
from chfw.core.signing import verify_document
from chfw.dsp.intake import create_app
from chfw.dsp.runtime import build_service
from chfw.dsp.store import csps, estate, inventory, outbox, parked_outcomes
from chfw.shared.config import Settings
from tests.cli.dbcli import CliDb
from tests.dsp.delivery.receiver import ScriptedReceiver
from tests.dsp.intake.server import running
from tests.small_dsp import ALICE, BOB, CH1, TRUST, build_dsp

LATE = DeviceId.parse("00-1D-A1-00-00-00-00-77")  # registered after its CSP answered
NEVER = DeviceId.parse("00-1D-A1-00-00-00-00-78")  # not in any estate file here
V1 = FirmwareVersion.parse("02010300")
V2 = FirmwareVersion.parse("02010400")
TOKEN = "parked-outcomes-dashboard-token-0123"
HEADER = "device_id,csp_region,mpxn,fuel,import_supplier,export_supplier,gas_supplier\n"

worker_app = typer.Typer()
worker_app.command()(worker)


def cs06(device: DeviceId, counter: int, version: FirmwareVersion = V1) -> bytes:
    return encode_response(
        device_id=device,
        recipient=ALICE,
        counter=counter,
        result=ActivationResult.SUCCESS,
        firmware_version=version,
    )


def estate_file(tmp_path: Path, device: DeviceId, name: str = "late.csv") -> Path:
    path = tmp_path / name
    path.write_text(
        HEADER
        + f"{device},north,1000000000077,electricity,{ALICE},,\n"
        + f"{device},north,10000077,gas,,,{BOB}\n",
        encoding="utf-8",
    )
    return path


def post(base: str, credential: str, message: bytes) -> httpx.Response:
    return httpx.post(
        f"{base}/csp/v1/messages",
        content=message,
        headers={
            "content-type": "application/octet-stream",
            "authorization": f"Bearer {credential}",
        },
        timeout=30,
    )


class TestParkedUntilTheImport:
    def test_parked_listed_processed_by_the_import_and_delivered(
        self,
        cli: CliDb,
        engine: Engine,
        tmp_path: Path,
        signing: dict[str, str],
        receiver: ScriptedReceiver,
    ) -> None:
        csps.clear_cache()
        dsp = build_dsp(engine, {ALICE: receiver.url(), BOB: receiver.url()})
        settings = Settings(
            signing_key=signing["CHFW_SIGNING_KEY"],
            signing_cert=signing["CHFW_SIGNING_CERT"],
            dashboard_token=TOKEN,
            stats_cache_seconds=0,
        )
        with running(create_app(settings, build_service(settings, engine))) as (host, port):
            base = f"http://{host}:{port}"
            first = post(base, dsp.credential, cs06(LATE, 5, V1))
            assert first.status_code == 202, first.text
            assert first.json()["status"] == "parked"
            assert first.json()["key"] == f"{LATE}:5:outcome"
            again = post(base, dsp.credential, cs06(LATE, 5, V1))  # the CSP retries
            assert (again.status_code, again.json()["status"]) == (202, "parked")
            batch = httpx.post(
                f"{base}/csp/v1/messages/batch",
                json={"messages": [cs06(LATE, 6, V2).hex(), cs06(CH1, 7).hex()]},
                headers={"authorization": f"Bearer {dsp.credential}"},
                timeout=30,
            )
            assert batch.status_code == 200, batch.text
            late, known = batch.json()["results"]
            assert (late["status"], known["status"]) == ("parked", "processed")
            assert batch.json()["counts"] == {"parked": 1, "processed": 1}
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            assert 'chfw_intake_messages_total{status="parked"} 3.0' in metrics
            page = httpx.get(
                f"{base}/dashboard",
                headers={"authorization": f"Bearer {TOKEN}"},
                timeout=10,
                follow_redirects=True,
            )
            assert page.status_code == 200
            assert "Outcomes parked" in page.text

        listed = cli.invoke(parked_app, "list", "--json")
        assert listed.exit_code == 0, listed.output
        rows = json.loads(listed.stdout)
        assert [(r["key"], r["firmware_version"], r["in_estate"]) for r in rows] == [
            (f"{LATE}:5:outcome", V1.hex, False),
            (f"{LATE}:6:outcome", V2.hex, False),
        ]
        assert {r["csp"] for r in rows} == {"north-csp"}
        with engine.connect() as conn:
            assert inventory.history_for(conn, LATE) == []

        imported = cli.invoke(estate_app, "import", str(estate_file(tmp_path, LATE)))
        assert imported.exit_code == 0, imported.output
        assert "2 record(s) imported" in imported.stdout
        assert "parked outcomes processed: 2 (processed 2; decisions: new_version 2)" in (
            imported.stdout
        )
        assert "alerts queued: N64 2, N999 2" in imported.stdout
        assert "still parked" not in imported.stdout
        with engine.connect() as conn:
            assert parked_outcomes.count(conn) == 0
            history = inventory.history_for(conn, LATE)
            hub = estate.get_hub(conn, LATE)
        # In the order received: V1 then V2, each as if it had arrived now.
        assert [(h.originator_counter, h.version_after) for h in history] == [
            (5, V1),
            (6, V2),
        ]
        assert {h.csp for h in history} == {"north-csp"}
        assert hub is not None
        assert hub.active_firmware == V2
        assert "no parked outcomes" in cli.invoke(parked_app, "list").stdout

        # The CSP sends the first one again after the import: a duplicate, no second alert.
        with running(create_app(settings, build_service(settings, engine))) as (host, port):
            resent = post(f"http://{host}:{port}", dsp.credential, cs06(LATE, 5, V1))
        assert (resent.status_code, resent.json()["status"]) == (200, "duplicate")
        assert resent.json()["alerts"] == {"N64": 0, "N999": 0}

        delivered = cli.invoke(worker_app, "--until-idle")
        assert delivered.exit_code == 0, delivered.output
        assert "delivered 6" in delivered.stdout  # CH1: 2; LATE: 2 outcomes x 2 suppliers
        with engine.connect() as conn:
            mine = outbox.list_rows(conn, device_id=LATE.hex, limit=100)
        assert len(mine) == 4
        assert {r.state for r in mine} == {"delivered"}
        ids = [r.response_id.encode() for r in mine]
        bodies = [b for b in receiver.bodies() if any(i in b for i in ids)]
        assert len(bodies) == 4
        for body in bodies:
            verify_document(body, TRUST)

    def test_outcomes_of_ch_still_unknown_stay_parked(
        self, cli: CliDb, engine: Engine, tmp_path: Path
    ) -> None:
        dsp = build_dsp(engine)
        for device, counter in ((NEVER, 1), (LATE, 2), (NEVER, 3)):
            (result,) = dsp.service.submit([cs06(device, counter)], "north-csp")
            assert result.status.value == "parked"
        imported = cli.invoke(estate_app, "import", str(estate_file(tmp_path, LATE)))
        assert imported.exit_code == 0, imported.output
        assert "parked outcomes processed: 1" in imported.stdout
        assert "2 outcome(s) still parked: their CH is not in the estate" in imported.stdout
        listed = json.loads(cli.invoke(parked_app, "list", "--json").stdout)
        assert [(r["device_id"], r["originator_counter"]) for r in listed] == [
            (str(NEVER), 1),
            (str(NEVER), 3),
        ]

    def test_without_signing_identity_they_stay_parked(
        self, cli: CliDb, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        dsp = build_dsp(engine)
        dsp.service.submit([cs06(LATE, 4)], "north-csp")
        monkeypatch.delenv("CHFW_SIGNING_KEY")
        imported = cli.invoke(estate_app, "import", str(estate_file(tmp_path, LATE)))
        assert imported.exit_code == 1
        assert "1 parked outcome(s) of CHs now in the estate were not processed" in (
            imported.stderr
        )
        assert "Traceback" not in imported.output
        with engine.connect() as conn:
            assert estate.get_hub(conn, LATE) is not None  # the import itself stands
        (row,) = json.loads(cli.invoke(parked_app, "list", "--json").stdout)
        assert row["in_estate"] is True


class TestParkedConflicts:
    """A parked outcome sent again with other content is a conflict, not silently dropped."""

    def test_other_content_under_a_parked_identity(self, engine: Engine) -> None:
        csps.clear_cache()
        dsp = build_dsp(engine)
        app = create_app(Settings(stats_cache_seconds=0), dsp.service)
        with running(app) as (host, port):
            base = f"http://{host}:{port}"
            assert post(base, dsp.credential, cs06(LATE, 5)).status_code == 202
            assert post(base, dsp.credential, cs06(LATE, 5)).json()["status"] == "parked"
            conflict = post(base, dsp.credential, cs06(LATE, 5, V2))
            assert conflict.status_code == 409
            assert conflict.json()["status"] == "conflict"
            batch = httpx.post(
                f"{base}/csp/v1/messages/batch",
                json={"messages": [cs06(LATE, 6).hex(), cs06(LATE, 6, V2).hex()]},
                headers={"authorization": f"Bearer {dsp.credential}"},
                timeout=30,
            ).json()
        assert [r["status"] for r in batch["results"]] == ["parked", "conflict"]
        with engine.connect() as conn:
            kept = parked_outcomes.list_parked(conn)
        assert [(p.originator_counter, p.firmware_version) for p in kept] == [
            (5, V1.hex),
            (6, V1.hex),
        ]
