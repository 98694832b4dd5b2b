"""N64 and N999 documents: shape, values, canonical bytes and refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from lxml import etree

from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion
from chfw.core.duis import ResponseId, render_n64, render_n999, response_date_time
from chfw.exceptions import DuisRenderError, FirmwareVersionNotCarriable, InvalidValueError
from tests.core.duis.samples import (
    ALL_VERSIONS,
    AT,
    DEVICE,
    FIRMWARE,
    N64_VERSIONS,
    RESPONSE_ID,
    SR,
    V5_0,
    V5_1,
    aware_datetimes,
    n64,
    n64_inputs,
    n999,
    n999_inputs,
)

# The outline in docs/domain.md, "The alert document", in document order, as the paths of
# every element.
N64_OUTLINE = [
    "Response",
    "Response/Header",
    "Response/Header/ResponseID",
    "Response/Header/ResponseCode",
    "Response/Header/ResponseDateTime",
    "Response/Body",
    "Response/Body/DCCAlertMessage",
    "Response/Body/DCCAlertMessage/DCCAlertCode",
    "Response/Body/DCCAlertMessage/DCCAlert",
    "Response/Body/DCCAlertMessage/DCCAlert/CommsHubFirmwareActivation",
    "Response/Body/DCCAlertMessage/DCCAlert/CommsHubFirmwareActivation/DeviceID",
    "Response/Body/DCCAlertMessage/DCCAlert/CommsHubFirmwareActivation/FirmwareVersion",
]
_MISMATCH = "Response/Body/DCCAlertMessage/DCCAlert/DUISVersionMismatch"
N999_OUTLINE = [
    *N64_OUTLINE[:9],
    _MISMATCH,
    f"{_MISMATCH}/DCCAlertVersionMismatch",
    f"{_MISMATCH}/DCCAlertVersionMismatch/DCCAlertCode",
    f"{_MISMATCH}/DCCAlertVersionMismatch/DeviceID",
    f"{_MISMATCH}/ServiceUserDUISVersion",
]


def _outline(root: etree._Element) -> list[str]:
    """Every element's path from the root, in document order; all must be in the sr namespace."""
    paths = []
    for element in root.iter():
        qname = etree.QName(element)
        assert qname.namespace == SR, f"{qname} is not in the sr namespace"
        ancestors = [etree.QName(a).localname for a in reversed(list(element.iterancestors()))]
        paths.append("/".join([*ancestors, qname.localname]))
    return paths


def _value(root: etree._Element, local_path: str) -> str | None:
    """Text of the element at ``local_path`` (local names below Response)."""
    steps = "/".join(f"{{{SR}}}{step}" for step in local_path.split("/"))
    return root.findtext(steps)


def _canonical(document: bytes, *, exclusive: bool = False) -> bytes:
    return etree.tostring(etree.fromstring(document), method="c14n", exclusive=exclusive)


class TestN64Document:
    """An N64 carries the CH and its new version in the DUIS 5.1+ outline."""

    @pytest.mark.parametrize("version", N64_VERSIONS, ids=str)
    def test_outline_and_values(self, version: DuisVersion) -> None:
        root = etree.fromstring(n64(version))
        assert _outline(root) == N64_OUTLINE
        assert root.prefix == "sr"
        assert root.keys() == ["schemaVersion"]
        assert root.get("schemaVersion") == str(version)
        assert _value(root, "Header/ResponseID") == str(RESPONSE_ID)
        assert _value(root, "Header/ResponseCode") == "I0"
        assert _value(root, "Header/ResponseDateTime") == "2024-05-01T12:34:56.789Z"
        assert _value(root, "Body/DCCAlertMessage/DCCAlertCode") == "N64"
        activation = "Body/DCCAlertMessage/DCCAlert/CommsHubFirmwareActivation"
        assert _value(root, f"{activation}/DeviceID") == "00-1D-A1-00-00-00-00-42"
        assert _value(root, f"{activation}/FirmwareVersion") == "02010300"

    def test_worked_example_bytes(self) -> None:
        # Written out by hand from docs/domain.md, "The alert document", independently of the
        # templates.
        expected = (
            b'<sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" '
            b'schemaVersion="5.1"><sr:Header>'
            b"<sr:ResponseID>90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:1234</sr:ResponseID>"
            b"<sr:ResponseCode>I0</sr:ResponseCode>"
            b"<sr:ResponseDateTime>2024-05-01T12:34:56.789Z</sr:ResponseDateTime>"
            b"</sr:Header><sr:Body><sr:DCCAlertMessage><sr:DCCAlertCode>N64</sr:DCCAlertCode>"
            b"<sr:DCCAlert><sr:CommsHubFirmwareActivation>"
            b"<sr:DeviceID>00-1D-A1-00-00-00-00-42</sr:DeviceID>"
            b"<sr:FirmwareVersion>02010300</sr:FirmwareVersion>"
            b"</sr:CommsHubFirmwareActivation></sr:DCCAlert></sr:DCCAlertMessage></sr:Body>"
            b"</sr:Response>"
        )
        assert n64() == expected

    @pytest.mark.parametrize("hex_version", ["01", "0A0B", "ABCDEF", "FFFFFFFF"])
    def test_firmware_version_is_upper_case_hex_of_all_octets(self, hex_version: str) -> None:
        version = FirmwareVersion.parse(hex_version.lower())
        root = etree.fromstring(n64(firmware_version=version))
        path = "Body/DCCAlertMessage/DCCAlert/CommsHubFirmwareActivation/FirmwareVersion"
        assert _value(root, path) == hex_version

    def test_refuses_duis_5_0(self) -> None:
        with pytest.raises(DuisRenderError, match=r"DUIS 5\.0 has no N64.*N999"):
            n64(V5_0)

    def test_refuses_firmware_version_longer_than_four_octets(self) -> None:
        with pytest.raises(FirmwareVersionNotCarriable, match=r"0102030405.*at most 4"):
            n64(firmware_version=FirmwareVersion.parse("0102030405"))

    def test_firmware_error_is_an_invalid_value(self) -> None:
        with pytest.raises(InvalidValueError):
            n64(firmware_version=FirmwareVersion(bytes(32)))

    def test_refuses_firmware_version_as_text(self) -> None:
        with pytest.raises(DuisRenderError, match="must be a FirmwareVersion"):
            n64(firmware_version="02010300")


class TestN999Document:
    """An N999 names the alert the user cannot receive, the CH and the user's DUIS version."""

    @pytest.mark.parametrize("version", ALL_VERSIONS, ids=str)
    def test_outline_and_values(self, version: DuisVersion) -> None:
        root = etree.fromstring(n999(version))
        assert _outline(root) == N999_OUTLINE
        assert root.keys() == ["schemaVersion"]
        assert root.get("schemaVersion") == str(version)
        assert _value(root, "Header/ResponseID") == str(RESPONSE_ID)
        assert _value(root, "Header/ResponseCode") == "I0"
        assert _value(root, "Body/DCCAlertMessage/DCCAlertCode") == "N999"
        mismatch = "Body/DCCAlertMessage/DCCAlert/DUISVersionMismatch"
        assert _value(root, f"{mismatch}/DCCAlertVersionMismatch/DCCAlertCode") == "N64"
        assert _value(root, f"{mismatch}/DCCAlertVersionMismatch/DeviceID") == str(DEVICE)
        assert _value(root, f"{mismatch}/ServiceUserDUISVersion") == str(version)

    def test_carries_no_firmware_version(self) -> None:
        document = n999()
        assert b"FirmwareVersion" not in document
        assert FIRMWARE.hex.encode() not in document

    def test_other_alert_code(self) -> None:
        root = etree.fromstring(n999(alert_code="N63"))
        mismatch = "Body/DCCAlertMessage/DCCAlert/DUISVersionMismatch/DCCAlertVersionMismatch"
        assert _value(root, f"{mismatch}/DCCAlertCode") == "N63"

    @pytest.mark.parametrize(
        ("alert_code", "written"),
        [
            ("A&B", b"A&amp;B"),
            ("<N64>", b"&lt;N64&gt;"),
            ("a\rb", b"a&#xD;b"),
            ('say "hi"', b'say "hi"'),
            ("tab\there", b"tab\there"),
            ("line\nfeed", b"line\nfeed"),
            ("caf\u00e9", "caf\u00e9".encode()),
        ],
    )
    def test_escapes_text_as_c14n_does(self, alert_code: str, written: bytes) -> None:
        document = n999(alert_code=alert_code)
        assert b"<sr:DCCAlertCode>" + written + b"</sr:DCCAlertCode>" in document
        root = etree.fromstring(document)
        mismatch = "Body/DCCAlertMessage/DCCAlert/DUISVersionMismatch/DCCAlertVersionMismatch"
        assert _value(root, f"{mismatch}/DCCAlertCode") == alert_code

    @pytest.mark.parametrize("alert_code", ["", "N\x0064", "N\x1b", "\ud800", "\ufffe"])
    def test_refuses_alert_codes_xml_cannot_carry(self, alert_code: str) -> None:
        with pytest.raises(DuisRenderError, match="alert_code"):
            n999(alert_code=alert_code)


class TestCommonRefusals:
    """Both renderers refuse inputs that would make a wrong or unsigned-able document."""

    @pytest.mark.parametrize("render", [n64, n999])
    def test_naive_datetime(self, render: Callable[..., bytes]) -> None:
        with pytest.raises(DuisRenderError, match="no time zone"):
            render(V5_1, at=datetime(2024, 5, 1, 12, 0))

    @pytest.mark.parametrize("render", [n64, n999])
    def test_response_id_of_another_device(self, render: Callable[..., bytes]) -> None:
        other = DeviceId.parse("00-1D-A1-00-00-00-00-43")
        with pytest.raises(DuisRenderError, match="names device 00-1D-A1-00-00-00-00-42"):
            render(V5_1, device_id=other)

    @pytest.mark.parametrize(
        "overrides",
        [
            {"device_id": "00-1D-A1-00-00-00-00-42"},
            {"response_id": str(RESPONSE_ID)},
            {"duis_version": "5.1"},
            {"at": "2024-05-01T12:34:56Z"},
        ],
        ids=["device_id", "response_id", "duis_version", "at"],
    )
    @pytest.mark.parametrize("render", [n64, n999])
    def test_text_where_a_value_type_belongs(
        self, render: Callable[..., bytes], overrides: dict[str, object]
    ) -> None:
        with pytest.raises(DuisRenderError, match="must be a"):
            render(**overrides)

    def test_keyword_only(self) -> None:
        with pytest.raises(TypeError):
            render_n64(RESPONSE_ID, DEVICE, FIRMWARE, V5_1, AT)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            render_n999(RESPONSE_ID, DEVICE, V5_1, AT)  # type: ignore[call-arg]


class TestResponseDateTime:
    """ResponseDateTime is UTC to the millisecond, with a Z."""

    def test_converts_to_utc(self) -> None:
        at = datetime(2024, 1, 1, 0, 30, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
        assert response_date_time(at) == "2023-12-31T22:30:00.250Z"

    def test_truncates_below_the_millisecond(self) -> None:
        at = datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
        assert response_date_time(at) == "2023-12-31T23:59:59.999Z"

    def test_pads_early_years_to_four_digits(self) -> None:
        assert response_date_time(datetime(5, 1, 2, tzinfo=UTC)) == "0005-01-02T00:00:00.000Z"

    def test_consecutive_seconds_are_not_confused(self) -> None:
        first = datetime(2024, 5, 1, 12, 0, 0, 1000, tzinfo=UTC)
        second = first + timedelta(seconds=1)
        assert response_date_time(first) == "2024-05-01T12:00:00.001Z"
        assert response_date_time(second) == "2024-05-01T12:00:01.001Z"
        assert response_date_time(first) == "2024-05-01T12:00:00.001Z"

    def test_outside_the_calendar_in_utc(self) -> None:
        at = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
        with pytest.raises(DuisRenderError, match="outside the years"):
            response_date_time(at)

    @given(aware_datetimes)
    def test_reads_back_as_the_same_instant(self, at: datetime) -> None:
        text = response_date_time(at)
        assert len(text) == 24
        assert text.endswith("Z")
        read = datetime.fromisoformat(text)
        expected = at.astimezone(UTC)
        assert read == expected.replace(microsecond=expected.microsecond // 1000 * 1000)


class TestCanonicalForm:
    """The rendered bytes are exactly lxml's C14N of themselves, for any input."""

    @given(n64_inputs())
    def test_n64_is_canonical(self, inputs: dict[str, Any]) -> None:
        document = render_n64(**inputs)
        assert _canonical(document) == document
        assert _canonical(document, exclusive=True) == document

    @given(n999_inputs())
    def test_n999_is_canonical(self, inputs: dict[str, Any]) -> None:
        document = render_n999(**inputs)
        assert _canonical(document) == document
        assert _canonical(document, exclusive=True) == document

    @given(n999_inputs())
    def test_n999_round_trips_its_values(self, inputs: dict[str, Any]) -> None:
        root = etree.fromstring(render_n999(**inputs))
        mismatch = "Body/DCCAlertMessage/DCCAlert/DUISVersionMismatch"
        assert (
            _value(root, f"{mismatch}/DCCAlertVersionMismatch/DCCAlertCode")
            == (inputs["alert_code"])
        )
        assert ResponseId.parse(_value(root, "Header/ResponseID") or "") == inputs["response_id"]
        assert (
            DeviceId.parse(_value(root, f"{mismatch}/DCCAlertVersionMismatch/DeviceID") or "")
            == (inputs["device_id"])
        )

    @given(n64_inputs())
    def test_n64_round_trips_its_values(self, inputs: dict[str, Any]) -> None:
        root = etree.fromstring(render_n64(**inputs))
        activation = "Body/DCCAlertMessage/DCCAlert/CommsHubFirmwareActivation"
        assert ResponseId.parse(_value(root, "Header/ResponseID") or "") == inputs["response_id"]
        assert DeviceId.parse(_value(root, f"{activation}/DeviceID") or "") == inputs["device_id"]
        assert (
            FirmwareVersion.parse(_value(root, f"{activation}/FirmwareVersion") or "")
            == (inputs["firmware_version"])
        )
        assert DuisVersion.parse(root.get("schemaVersion", "")) == inputs["duis_version"]

    @pytest.mark.parametrize("render", [n64, n999])
    def test_compact_without_declaration_or_doctype(self, render: Callable[..., bytes]) -> None:
        document = render(V5_1)
        assert document.startswith(b"<sr:Response ")
        assert b"<?xml" not in document
        assert b"<!DOCTYPE" not in document
        assert b"/>" not in document  # C14N writes start and end tags
        assert document.count(b"xmlns") == 1
        for element in etree.fromstring(document).iter():
            assert element.tail is None, f"text after {element.tag}"
            if len(element):
                assert element.text is None, f"text inside {element.tag}"
