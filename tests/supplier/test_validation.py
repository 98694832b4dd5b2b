"""AlertSchemas: N64/N999 in full, other codes by envelope (bundled), all in full (official)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from chfw.core.domain import DuisVersion
from chfw.core.duis.alert_codes import dcc_alert_codes
from chfw.exceptions import SchemaValidationError
from chfw.supplier.validation import AlertSchemas, envelope_schemas
from tests.supplier.helpers import POWER_OUTAGE, Dsp, other_alert

RID = "90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:7"
V50, V51, V54 = DuisVersion(5, 0), DuisVersion(5, 1), DuisVersion(5, 4)
ALL_VERSIONS = [DuisVersion(*pair) for pair in DuisVersion.SUPPORTED]


def _root(document: bytes) -> etree._Element:
    return etree.fromstring(document)


def _alert(code: str, body: str = POWER_OUTAGE, duis: str = "5.1", **kwargs: str) -> etree._Element:
    return _root(other_alert(RID, code, body, duis=duis, **kwargs))


class TestBundled:
    """With chfw's subset, unknown bodies pass only inside a strict envelope."""

    @pytest.mark.parametrize("version", ALL_VERSIONS, ids=str)
    def test_envelope_compiles_for_every_version(self, version: DuisVersion) -> None:
        assert envelope_schemas().schema_for(version) is not None

    @pytest.mark.parametrize("code", ["N1", "N12", "N62", "N63", "N65", "AD1"])
    def test_other_codes_pass_with_any_body(self, code: str) -> None:
        AlertSchemas.bundled().validate(_alert(code), V51)

    @pytest.mark.parametrize(
        "code", ["X1", "N", "N0", "N32", "N66", "N9999", "N12345", "n12", " N12", "N12 "]
    )
    def test_codes_no_duis_version_defines_fail(self, code: str) -> None:
        with pytest.raises(SchemaValidationError, match="DCCAlertCode"):
            AlertSchemas.bundled().validate(_alert(code), V51)

    @pytest.mark.parametrize("code", ["N63", "N65"])
    def test_codes_of_a_later_version_fail(self, code: str) -> None:
        """DUIS 5.0 has no N63 to N65: such an alert is refused, not stored raw."""
        with pytest.raises(SchemaValidationError, match="DCCAlertCode"):
            AlertSchemas.bundled().validate(_alert(code, duis="5.0"), V50)

    def test_envelope_checks_the_header(self) -> None:
        bad_id = _root(other_alert("not-an-id", "N12", POWER_OUTAGE))
        with pytest.raises(SchemaValidationError, match="ResponseID"):
            AlertSchemas.bundled().validate(bad_id, V51)

    def test_envelope_needs_exactly_one_alert_element(self) -> None:
        with pytest.raises(SchemaValidationError, match="DCCAlert"):
            AlertSchemas.bundled().validate(_alert("N12", ""), V51)
        with pytest.raises(SchemaValidationError, match="'other': This element is not expected"):
            AlertSchemas.bundled().validate(_alert("N12", "<other>x</other>"), V51)

    def test_envelope_checks_schema_version(self) -> None:
        with pytest.raises(SchemaValidationError, match="schemaVersion"):
            AlertSchemas.bundled().validate(_alert("N12", duis="5.0"), V51)

    def test_n64_and_n999_are_checked_in_full(self, dsp: Dsp) -> None:
        schemas = AlertSchemas.bundled()
        schemas.validate(_root(dsp.n64()), V51)
        schemas.validate(_root(dsp.n999(duis="5.0")), V50)
        with pytest.raises(SchemaValidationError, match="chfw's bundled DUIS alert schema"):
            schemas.validate(_alert("N64", POWER_OUTAGE), V51)

    def test_n64_fails_on_duis_5_0(self) -> None:
        body = (
            "<sr:CommsHubFirmwareActivation><sr:DeviceID>00-1D-A1-00-00-00-00-42</sr:DeviceID>"
            "<sr:FirmwareVersion>01</sr:FirmwareVersion></sr:CommsHubFirmwareActivation>"
        )
        with pytest.raises(SchemaValidationError, match=r"DUIS 5\.0"):
            AlertSchemas.bundled().validate(_alert("N64", body, duis="5.0"), V50)


@pytest.mark.reference
class TestOfficial:
    """With DCC's XSDs every alert body is checked, so an unknown body fails."""

    def test_a_valid_other_alert_passes(self, dcc_reference: Path) -> None:
        AlertSchemas.official(dcc_reference / "xsd").validate(_alert("N12", POWER_OUTAGE), V51)

    def test_an_invented_body_fails(self, dcc_reference: Path) -> None:
        with pytest.raises(SchemaValidationError, match="official DUIS schemas"):
            AlertSchemas.official(dcc_reference / "xsd").validate(
                _alert("N12", "<sr:Invented>1</sr:Invented>"), V51
            )

    def test_firmware_alerts_pass(self, dcc_reference: Path, dsp: Dsp) -> None:
        schemas = AlertSchemas.official(dcc_reference / "xsd")
        schemas.validate(_root(dsp.n64(duis="5.4")), V54)
        schemas.validate(_root(dsp.n999(duis="5.0")), V50)


@pytest.mark.reference
class TestAlertCodesAgainstDcc:
    """chfw's list of DCC alert codes per version is the enumeration in DCC's schemas."""

    @pytest.mark.parametrize("version", [V50, V51, V54], ids=str)
    def test_same_codes_as_the_official_schema(
        self, dcc_reference: Path, version: DuisVersion
    ) -> None:
        (xsd,) = (dcc_reference / "xsd" / str(version)).glob("DUIS Schema*.xsd")
        tree = etree.parse(str(xsd), etree.XMLParser(no_network=True, resolve_entities=False))
        xs = "{http://www.w3.org/2001/XMLSchema}"
        (element,) = (
            e
            for e in tree.iter(f"{xs}element")
            if e.get("name") == "DCCAlertCode" and e.get("type") is None
        )
        official = {e.get("value") for e in element.iter(f"{xs}enumeration")}
        assert dcc_alert_codes(version) == official
