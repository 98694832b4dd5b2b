"""Who is alerted, through the real intake: CS06 outcomes POSTed by a CSP, alerts counted per user.

Responsible Suppliers per the SEC (an Export Supplier beside an Import
Supplier gets nothing; an export-only supplier is the Import Supplier), and
one rule for a version DUIS cannot carry, for N64 and N999 recipients alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from chfw.core.domain import (
    ActivationResult,
    Decision,
    DeviceId,
    DuisVersion,
    Eui64,
    FirmwareVersion,
    Fuel,
    MeterPoint,
    UserId,
)
from chfw.core.gbcs import encode_response
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.intake import create_app
from chfw.dsp.store import csps, estate, inventory, users
from chfw.dsp.store.schema import outbox
from chfw.shared.config import Settings
from tests.sim.live import serve
from tests.small_dsp import ALICE, BOB, CH1, Dsp, build_dsp

ERIN = UserId.parse("90-B3-D5-1F-30-03-00-00")  # an Export Supplier, DUIS 5.1
BESIDE_ON_ITS_OWN_MPAN = DeviceId.parse("00-1D-A1-00-00-00-00-51")  # import ALICE, export ERIN
BESIDE_ON_ONE_RECORD = DeviceId.parse("00-1D-A1-00-00-00-00-52")  # ALICE and ERIN, one MPAN
EXPORT_ONLY = DeviceId.parse("00-1D-A1-00-00-00-00-53")  # ERIN on an export MPAN, gas BOB
SENDER = Eui64.parse("90-B3-D5-1F-30-02-00-00")
V1 = FirmwareVersion.parse("02010300")
LONG = FirmwareVersion.parse("0102030405")


@pytest.fixture
def dsp(engine: Engine) -> Iterator[Dsp]:
    csps.clear_cache()
    dsp = build_dsp(engine)
    with engine.begin() as conn:
        users.add_user(
            conn,
            users.ServiceUser(ERIN, "Erin Export", frozenset({"ES"}), DuisVersion(5, 1), None),
        )
        estate.add_hub(
            conn,
            BESIDE_ON_ITS_OWN_MPAN,
            CspRegion.NORTH,
            [
                MeterPoint("2000000000001", Fuel.ELECTRICITY, import_supplier=ALICE),
                MeterPoint("2000000000002", Fuel.ELECTRICITY, export_supplier=ERIN),
            ],
        )
        estate.add_hub(
            conn,
            BESIDE_ON_ONE_RECORD,
            CspRegion.NORTH,
            [
                MeterPoint(
                    "2000000000003",
                    Fuel.ELECTRICITY,
                    import_supplier=ALICE,
                    export_supplier=ERIN,
                )
            ],
        )
        estate.add_hub(
            conn,
            EXPORT_ONLY,
            CspRegion.NORTH,
            [
                MeterPoint("2000000000004", Fuel.ELECTRICITY, export_supplier=ERIN),
                MeterPoint("20000004", Fuel.GAS, gas_supplier=BOB),
            ],
        )
    yield dsp
    csps.clear_cache()


@pytest.fixture
def intake(dsp: Dsp) -> Iterator[httpx.Client]:
    """The DSP's intake app served on 127.0.0.1, authenticated as its CSP."""
    headers = {"authorization": f"Bearer {dsp.credential}"}
    with (
        serve(create_app(Settings(), dsp.service)) as base,
        httpx.Client(base_url=base, headers=headers, timeout=30) as client,
    ):
        yield client


def post(
    intake: httpx.Client, device: DeviceId, counter: int, version: FirmwareVersion = V1
) -> dict[str, object]:
    """POST one successful CS06 response as a CSP does; the intake's JSON answer."""
    message = encode_response(
        device_id=device,
        recipient=SENDER,
        counter=counter,
        result=ActivationResult.SUCCESS,
        firmware_version=version,
    )
    answer = intake.post(
        "/csp/v1/messages",
        content=message,
        headers={"content-type": "application/octet-stream"},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    assert body["status"] == "processed"
    return body


def alerts_per_user(engine: Engine, device: DeviceId) -> Counter[tuple[UserId, str]]:
    """The CH's alerts in the outbox, counted by (user, alert code)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.user_id, outbox.c.alert_code).where(outbox.c.device_id == device.hex)
        )
        return Counter((UserId.parse(user), code) for user, code in rows)


class TestResponsibleSuppliers:
    """An Export Supplier beside an Import Supplier is not told; an export-only one is."""

    @pytest.mark.parametrize("device", [BESIDE_ON_ITS_OWN_MPAN, BESIDE_ON_ONE_RECORD])
    def test_export_supplier_beside_an_import_supplier_gets_no_alert(
        self, dsp: Dsp, intake: httpx.Client, device: DeviceId
    ) -> None:
        body = post(intake, device, 10)
        assert body["alerts"] == {"N64": 1, "N999": 0}
        assert alerts_per_user(dsp.engine, device) == Counter({(ALICE, "N64"): 1})

    def test_export_only_supplier_gets_the_alert(self, dsp: Dsp, intake: httpx.Client) -> None:
        body = post(intake, EXPORT_ONLY, 11)
        assert body["alerts"] == {"N64": 1, "N999": 1}
        assert alerts_per_user(dsp.engine, EXPORT_ONLY) == Counter(
            {(ERIN, "N64"): 1, (BOB, "N999"): 1}
        )

    def test_one_alert_per_user_per_activation(self, dsp: Dsp, intake: httpx.Client) -> None:
        post(intake, BESIDE_ON_ONE_RECORD, 12)
        post(intake, BESIDE_ON_ONE_RECORD, 13, FirmwareVersion.parse("02010400"))
        assert alerts_per_user(dsp.engine, BESIDE_ON_ONE_RECORD) == Counter({(ALICE, "N64"): 2})


class TestVersionNotCarriable:
    """A version over 4 octets: CH1's N64 user (ALICE, 5.1) and N999 user (BOB, 5.0) alike
    get nothing; the inventory and history hold the version; the intake surfaces it."""

    def test_neither_n64_nor_n999_and_recorded_as_it_is(
        self, dsp: Dsp, intake: httpx.Client
    ) -> None:
        with structlog.testing.capture_logs() as logs:
            body = post(intake, CH1, 20, LONG)
        assert body["decision"] == "version_not_carriable"
        assert body["alerts"] == {"N64": 0, "N999": 0}
        (warning,) = body["warnings"]  # type: ignore[misc]
        assert "0102030405 has 5 octets" in warning
        assert "no N64 or N999" in warning
        assert str(ALICE) in warning
        assert str(BOB) in warning
        assert alerts_per_user(dsp.engine, CH1) == Counter()
        (error,) = [e for e in logs if e["event"] == "firmware_version_not_carriable"]
        assert error["log_level"] == "error"
        assert (error["device_id"], error["firmware_version"]) == (str(CH1), "0102030405")
        assert error["withheld"] == [str(ALICE), str(BOB)]
        with dsp.engine.connect() as conn:
            hub = estate.get_hub(conn, CH1)
            assert hub is not None
            assert hub.active_firmware == LONG
            (entry,) = inventory.history_for(conn, CH1)
            assert entry.decision is Decision.VERSION_NOT_CARRIABLE
            assert entry.alerts_created == 0
            assert entry.note is not None
            assert "no N64 or N999" in entry.note
        metrics = intake.get("/metrics").text
        assert 'chfw_intake_decisions_total{decision="version_not_carriable"} 1.0' in metrics

    def test_the_same_long_version_again_is_silent_and_a_carriable_one_alerts_all(
        self, dsp: Dsp, intake: httpx.Client
    ) -> None:
        post(intake, CH1, 21, LONG)
        again = post(intake, CH1, 22, LONG)
        assert again["decision"] == "same_version"
        assert "warnings" not in again
        after = post(intake, CH1, 23, V1)
        assert after["decision"] == "new_version"
        assert alerts_per_user(dsp.engine, CH1) == Counter({(ALICE, "N64"): 1, (BOB, "N999"): 1})
