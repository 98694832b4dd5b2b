"""Through the served intake: conflicts answered 409 (and per message in batches), recorded
and counted; a late answer and a hub clock in 2031 neither roll back nor freeze a hub."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
import typer
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from chfw.cli.worker import worker
from chfw.core.domain import ActivationResult, FirmwareVersion
from chfw.core.duis import SR_NAMESPACE
from chfw.core.gbcs import encode_response
from chfw.core.signing import verify_document
from chfw.dsp.intake import create_app
from chfw.dsp.store import csps, estate
from chfw.dsp.store.schema import intake_rejections
from chfw.shared.config import Settings
from tests.cli.dbcli import CliDb
from tests.dsp.delivery.receiver import ScriptedReceiver
from tests.dsp.intake.helpers import SUPPLIER
from tests.dsp.intake.server import running
from tests.small_dsp import ALICE, BOB, CH1, TRUST, Dsp, build_dsp

V1, V2, V3 = (FirmwareVersion.parse(v) for v in ("02010300", "02010400", "02010500"))

worker_app = typer.Typer()
worker_app.command()(worker)


def message(counter: int, version: FirmwareVersion, at: datetime | None = None) -> bytes:
    return encode_response(
        device_id=CH1,
        recipient=SUPPLIER,
        counter=counter,
        result=ActivationResult.SUCCESS,
        firmware_version=version,
        date_time=at,
    )


@pytest.fixture
def app(dsp: Dsp) -> FastAPI:
    return create_app(Settings(), dsp.service)


def post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(
        "/csp/v1/messages", content=body, headers={"content-type": "application/octet-stream"}
    )


class TestConflicts:
    """Same (CH, sender, counter, event), other content: 409, recorded, counted; first stands."""

    def test_single_message(self, client: httpx.Client, dsp: Dsp) -> None:
        assert post(client, message(7, V1)).status_code == 200
        assert post(client, message(7, V1)).json()["status"] == "duplicate"
        conflict = post(client, message(7, V2))
        assert conflict.status_code == 409
        assert conflict.json()["status"] == "conflict"
        with dsp.engine.connect() as conn:
            reasons = conn.execute(sa.select(intake_rejections.c.reason)).scalars().all()
            hub = estate.get_hub(conn, CH1)
        assert hub is not None
        assert hub.active_firmware == V1
        assert any(reason.startswith("conflict:") for reason in reasons)
        metrics = client.get("/metrics").text
        assert 'chfw_intake_messages_total{status="conflict"} 1.0' in metrics

    def test_in_a_batch_answer(self, client: httpx.Client, dsp: Dsp) -> None:
        post(client, message(8, V1))
        answer = client.post(
            "/csp/v1/messages/batch",
            json={"messages": [message(8, V1).hex(), message(8, V3).hex(), message(9, V2).hex()]},
        )
        assert answer.status_code == 200
        body = answer.json()
        assert [r["status"] for r in body["results"]] == ["duplicate", "conflict", "processed"]
        assert body["counts"]["conflict"] == 1


class TestOrder:
    """The hub's own order of events, whatever the network does to the messages."""

    def test_late_answer_is_stale(self, client: httpx.Client, dsp: Dsp) -> None:
        assert post(client, message(21, V2)).json()["decision"] == "new_version"
        late = post(client, message(20, V1)).json()
        assert (late["decision"], late["alerts"]["N64"]) == ("stale", 0)

    def test_clock_in_2031(self, client: httpx.Client, dsp: Dsp) -> None:
        future = post(client, message(30, V1, datetime(2031, 6, 1, tzinfo=UTC))).json()
        assert future["decision"] == "new_version"
        assert any("later than the message was received" in w for w in future["warnings"])
        genuine = post(client, message(31, V2, datetime.now(UTC).replace(microsecond=0))).json()
        assert genuine["decision"] == "new_version"
        assert genuine["alerts"]["N64"] == 1


class TestDeliveredInOrder:
    """HTTP in, HTTPS out: after a late answer and a lying clock, suppliers hold the newest."""

    def test_only_the_newest_versions_reach_the_suppliers(
        self, engine: Engine, cli: CliDb, receiver: ScriptedReceiver
    ) -> None:
        csps.clear_cache()
        dsp = build_dsp(engine, {ALICE: receiver.url(), BOB: receiver.url()})
        with (
            running(create_app(Settings(), dsp.service)) as (host, port),
            httpx.Client(
                base_url=f"http://{host}:{port}",
                headers={"authorization": f"Bearer {dsp.credential}"},
                timeout=10,
            ) as client,
        ):
            assert post(client, message(41, V2)).json()["decision"] == "new_version"
            assert post(client, message(40, V1)).json()["decision"] == "stale"  # late answer
            clock_2031 = post(client, message(42, V3, datetime(2031, 1, 1, tzinfo=UTC))).json()
            assert clock_2031["decision"] == "new_version"
            assert post(client, message(39, V1)).json()["decision"] == "stale"
        delivered = cli.invoke(worker_app, "--until-idle")
        assert delivered.exit_code == 0, delivered.output
        documents = [verify_document(body, TRUST).root for body in receiver.bodies()]
        n64 = [d.findtext(f".//{{{SR_NAMESPACE}}}FirmwareVersion") for d in documents]
        # ALICE (DUIS 5.1) hears V2 then V3; BOB (5.0) two N999s, which carry no version.
        assert [v for v in n64 if v] == [V2.hex, V3.hex]
        assert n64.count(None) == 2
