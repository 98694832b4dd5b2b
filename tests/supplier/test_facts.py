"""read_alert: what the back office keeps from a verified alert, and what it refuses to guess."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from chfw.supplier.facts import AlertShapeError, read_alert
from tests.supplier.helpers import CH, POWER_OUTAGE, T0, Dsp, other_alert

RID = "90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:7"


def _n64(version: str) -> str:
    return (
        f"<sr:CommsHubFirmwareActivation><sr:DeviceID>{CH}</sr:DeviceID>"
        f"<sr:FirmwareVersion>{version}</sr:FirmwareVersion></sr:CommsHubFirmwareActivation>"
    )


def _root(document: bytes) -> etree._Element:
    return etree.fromstring(document)


class TestFirmwareAlerts:
    """N64 and N999 give the CH, the version (N64 only) and the alert time."""

    def test_n64(self, dsp: Dsp) -> None:
        facts = read_alert(_root(dsp.n64("0A0B0C0D", counter=99)), "5.1")
        assert facts.alert_code == "N64"
        assert facts.device_id == CH
        assert facts.firmware_version == "0A0B0C0D"
        assert facts.counter == 99
        assert facts.alert_time == T0
        assert facts.response_id.endswith(":99")
        assert facts.schema_version == "5.1"
        assert facts.is_firmware_activation

    def test_n999_standing_in_for_n64(self, dsp: Dsp) -> None:
        facts = read_alert(_root(dsp.n999()), "5.0")
        assert (facts.alert_code, facts.mismatch_alert_code) == ("N999", "N64")
        assert facts.firmware_version is None
        assert facts.device_id == CH
        assert facts.is_firmware_activation

    @pytest.mark.parametrize("version", ["1020304", "v1.2-rc", "0a0b", "X", "  01  "])
    def test_any_schema_valid_version_is_kept_as_signed(self, version: str) -> None:
        facts = read_alert(_root(other_alert(RID, "N64", _n64(version))), "5.1")
        assert facts.firmware_version == version

    def test_a_response_id_without_a_counter_orders_below_one_with_it(self) -> None:
        plain = read_alert(_root(other_alert("DSP-7", "N64", _n64("01"))), "5.1")
        counted = read_alert(_root(other_alert(RID, "N64", _n64("01"))), "5.1")
        assert plain.counter is None
        assert plain.order < counted.order

    def test_time_with_an_offset_becomes_utc(self) -> None:
        document = other_alert(RID, "N64", _n64("01")).replace(
            b"2026-03-01T09:00:00.000Z", b"2026-03-01T10:30:00+01:00"
        )
        assert read_alert(_root(document), "5.1").alert_time == datetime(
            2026, 3, 1, 9, 30, tzinfo=UTC
        )


class TestOtherAlerts:
    """Other codes keep their code and the device their ResponseID names."""

    def test_device_from_the_response_id(self) -> None:
        facts = read_alert(_root(other_alert(RID, "N12", POWER_OUTAGE)), "5.1")
        assert facts.alert_code == "N12"
        assert facts.device_id == CH
        assert facts.firmware_version is None
        assert not facts.is_firmware_activation

    def test_n999_for_another_alert_is_not_a_firmware_activation(self) -> None:
        body = (
            "<sr:DUISVersionMismatch><sr:DCCAlertVersionMismatch><sr:DCCAlertCode>N65"
            "</sr:DCCAlertCode></sr:DCCAlertVersionMismatch><sr:ServiceUserDUISVersion>5.0"
            "</sr:ServiceUserDUISVersion></sr:DUISVersionMismatch>"
        )
        facts = read_alert(_root(other_alert(RID, "N999", body, duis="5.0")), "5.0")
        assert facts.mismatch_alert_code == "N65"
        assert not facts.is_firmware_activation


class TestRefused:
    """Alerts the receiver cannot file are refused with the reason."""

    @pytest.mark.parametrize(
        ("document", "words"),
        [
            (other_alert(RID, "N64", POWER_OUTAGE), "without DCCAlert/CommsHubFirmwareActivation"),
            (other_alert(RID, "N999", POWER_OUTAGE), "without DCCAlert/DUISVersionMismatch"),
            (other_alert("", "N12", POWER_OUTAGE), "no ResponseID"),
            (
                other_alert(RID, "N12", POWER_OUTAGE).replace(b"2026-03-01T09", b"2026-13-01T09"),
                "ResponseDateTime",
            ),
        ],
    )
    def test_shape_errors(self, document: bytes, words: str) -> None:
        with pytest.raises(AlertShapeError, match=words):
            read_alert(_root(document), "5.1")

    def test_not_a_dcc_alert(self) -> None:
        document = other_alert(RID, "N12", POWER_OUTAGE).replace(
            b"DCCAlertMessage>", b"ResponseMessage>"
        )
        with pytest.raises(AlertShapeError, match="not a DCC alert"):
            read_alert(_root(document), "5.1")
