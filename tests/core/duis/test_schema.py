"""Schema validation: chfw's bundled subset XSD and, when present, DCC's official XSDs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from lxml import etree

from chfw.core.domain import DuisVersion
from chfw.core.duis import (
    DocumentValidator,
    SchemaSet,
    bundled_schemas,
    official_schemas,
    render_n64,
    render_n999,
)
from chfw.exceptions import ConfigError, SchemaValidationError
from tests.core.duis.samples import (
    ALL_VERSIONS,
    N64_VERSIONS,
    SIGNATURE,
    V5_0,
    V5_1,
    V5_4,
    n64,
    n64_inputs,
    n999,
    n999_inputs,
    with_signature,
)

REFERENCE_VERSIONS = (V5_0, V5_1, V5_4)  # the official XSDs in ../shared/dcc-reference/xsd


def _swap(document: bytes, first: bytes, second: bytes) -> bytes:
    """Swap two sibling elements, given their full text."""
    assert first + second in document
    return document.replace(first + second, second + first)


# Broken variants of a valid document: (name, version validated as, document).
_CODE = b"<sr:ResponseCode>I0</sr:ResponseCode>"
_TIME = b"<sr:ResponseDateTime>2024-05-01T12:34:56.789Z</sr:ResponseDateTime>"
_DEVICE = b"<sr:DeviceID>00-1D-A1-00-00-00-00-42</sr:DeviceID>"
_FIRMWARE = b"<sr:FirmwareVersion>02010300</sr:FirmwareVersion>"
_N64 = n64()
_HEADER = _N64[_N64.index(b"<sr:Header>") : _N64.index(b"<sr:Body>")]
MALFORMED: list[tuple[str, DuisVersion, bytes]] = [
    ("header out of order", V5_1, _swap(_N64, _CODE, _TIME)),
    ("alert body out of order", V5_1, _swap(_N64, _DEVICE, _FIRMWARE)),
    ("missing ResponseCode", V5_1, _N64.replace(_CODE, b"")),
    ("missing ResponseCode (N999)", V5_0, n999().replace(_CODE, b"")),
    ("missing Header", V5_1, _N64.replace(_HEADER, b"")),
    ("DeviceID of seven octets", V5_1, _N64.replace(b"-00-42</sr:DeviceID>", b"-42</sr:DeviceID>")),
    ("DeviceID without hyphens", V5_1, _N64.replace(_DEVICE, _DEVICE.replace(b"-", b""))),
    ("DeviceID not hex (N999)", V5_0, n999().replace(b"00-1D-A1", b"00-1D-G1")),
    ("FirmwareVersion of 9 characters", V5_1, _N64.replace(b"02010300<", b"020103001<")),
    ("empty FirmwareVersion", V5_4, n64(V5_4).replace(b"02010300<", b"<")),
    ("N64 under DUIS 5.0", V5_0, _N64.replace(b'schemaVersion="5.1"', b'schemaVersion="5.0"')),
    ("unknown ResponseCode", V5_1, _N64.replace(b">I0<", b">I1<")),
    ("ResponseDateTime not a dateTime", V5_1, _N64.replace(b"2024-05-01T12", b"2024-05-01 12")),
    ("ResponseID counter 2^64", V5_1, _N64.replace(b":1234<", b":18446744073709551616<")),
    ("ResponseID counter with a leading zero", V5_1, _N64.replace(b":1234<", b":01234<")),
    ("ResponseID without counter", V5_1, _N64.replace(b":1234<", b"<")),
    ("missing schemaVersion", V5_1, _N64.replace(b' schemaVersion="5.1"', b"")),
    ("schemaVersion not a decimal", V5_1, _N64.replace(b'"5.1"', b'"five"')),
    ("element after the signature", V5_1, with_signature(_N64, SIGNATURE + b"<sr:Body/>")),
    ("two signatures", V5_1, with_signature(_N64, SIGNATURE + SIGNATURE)),
    ("unknown element in Header", V5_1, _N64.replace(_CODE, b"<sr:Extra>x</sr:Extra>" + _CODE)),
    ("Response in another namespace", V5_1, _N64.replace(b"co.uk/Service", b"example/Service")),
]  # fmt: skip


class TestBundledSchemasAcceptWhatWeRender:
    """Every document chfw renders is valid against its version's bundled schema."""

    @given(n64_inputs())
    def test_n64(self, inputs: dict[str, Any]) -> None:
        document = render_n64(**inputs)
        bundled_schemas().validate(document, inputs["duis_version"])

    @given(n999_inputs())
    def test_n999(self, inputs: dict[str, Any]) -> None:
        document = render_n999(**inputs)
        bundled_schemas().validate(document, inputs["duis_version"])

    @pytest.mark.parametrize("version", N64_VERSIONS, ids=str)
    def test_signed_n64(self, version: DuisVersion) -> None:
        bundled_schemas().validate(with_signature(n64(version)), version)

    @pytest.mark.parametrize("version", ALL_VERSIONS, ids=str)
    def test_signed_n999(self, version: DuisVersion) -> None:
        bundled_schemas().validate(with_signature(n999(version)), version)

    def test_parsed_element(self) -> None:
        bundled_schemas().validate(etree.fromstring(n64()), V5_1)

    def test_whitespace_between_elements_is_still_schema_valid(self) -> None:
        # Compactness matters to signatures (docs/domain.md, "Signing"), not to the schema.
        pretty = etree.tostring(etree.fromstring(n64()), pretty_print=True)
        assert b"\n  <sr:Header>" in pretty
        bundled_schemas().validate(pretty, V5_1)


class TestBundledSchemasRejectMalformed:
    """Broken documents fail the bundled schema with a message naming the problem."""

    @pytest.mark.parametrize(
        ("name", "version", "document"), MALFORMED, ids=[m[0] for m in MALFORMED]
    )
    def test_rejected(self, name: str, version: DuisVersion, document: bytes) -> None:
        with pytest.raises(SchemaValidationError, match=f"DUIS {version}: line 1: "):
            bundled_schemas().validate(document, version)

    def test_message_names_the_element_with_the_sr_prefix(self) -> None:
        document = n64().replace(b"02010300<", b"020103001<")
        with pytest.raises(SchemaValidationError) as caught:
            bundled_schemas().validate(document, V5_1)
        message = str(caught.value)
        assert "bundled" in message
        assert "'sr:FirmwareVersion'" in message
        assert "{http" not in message

    def test_n64_document_is_invalid_as_5_0(self) -> None:
        with pytest.raises(SchemaValidationError, match=r"DUIS 5\.0: line 1: .*N64"):
            bundled_schemas().validate(n64(V5_1), V5_0)

    @pytest.mark.parametrize("declared", ["5.10", "05.1", " 5.1 "])
    def test_schema_version_compares_as_a_decimal(self, declared: str) -> None:
        document = n64().replace(b'"5.1"', f'"{declared}"'.encode())
        bundled_schemas().validate(document, V5_1)

    def test_document_of_another_version(self) -> None:
        with pytest.raises(SchemaValidationError, match=r"declares schemaVersion '5\.4'"):
            bundled_schemas().validate(n64(V5_4), V5_1)

    def test_doctype_is_refused(self) -> None:
        document = b"<!DOCTYPE sr:Response>" + n64()
        with pytest.raises(SchemaValidationError, match="DOCTYPE"):
            bundled_schemas().validate(document, V5_1)

    def test_not_well_formed(self) -> None:
        with pytest.raises(SchemaValidationError, match="not well-formed"):
            bundled_schemas().validate(n64()[:-5], V5_1)

    def test_other_alert_codes_are_outside_the_subset(self) -> None:
        document = n64().replace(b">N64<", b">N63<")
        with pytest.raises(SchemaValidationError, match="N63"):
            bundled_schemas().validate(document, V5_1)

    def test_signature_content_is_left_to_the_verifier(self) -> None:
        # processContents="skip": the bundled schema checks where ds:Signature is, not
        # what is inside; chfw.core.signing's verifier checks the rest.
        scrambled = SIGNATURE.replace(b"<ds:SignedInfo>", b"<ds:Nonsense/><ds:SignedInfo>")
        bundled_schemas().validate(with_signature(n64(), scrambled), V5_1)


class TestSchemaSet:
    """Schemas are compiled once and shared; the set is safe to use from several threads."""

    def test_bundled_set_is_one_per_process(self) -> None:
        assert bundled_schemas() is bundled_schemas()

    def test_versions_with_the_same_alerts_share_a_compiled_schema(self) -> None:
        schemas = bundled_schemas()
        assert schemas.schema_for(DuisVersion(5, 2)) is schemas.schema_for(V5_4)
        assert schemas.schema_for(V5_1) is schemas.schema_for(V5_4)
        assert schemas.schema_for(V5_0) is not schemas.schema_for(V5_1)

    def test_loader_runs_once_per_version(self) -> None:
        calls: list[DuisVersion] = []
        real = bundled_schemas()

        def loader(version: DuisVersion) -> etree.XMLSchema:
            calls.append(version)
            return real.schema_for(version)

        schemas = SchemaSet("counting", loader)
        for _ in range(3):
            schemas.validate(n64(), V5_1)
            schemas.validate(n999(), V5_0)
        assert calls == [V5_1, V5_0]

    def test_is_a_document_validator(self) -> None:
        validator: DocumentValidator = bundled_schemas()
        validator.validate(n999(), V5_0)

    def test_concurrent_validation_gives_each_caller_its_answer(self) -> None:
        schemas = bundled_schemas()
        good = n64()
        bad = n64().replace(b"02010300<", b"020103001<")
        failures: list[str] = []
        wrong: list[str] = []

        def work() -> None:
            for _ in range(200):
                schemas.validate(good, V5_1)
                try:
                    schemas.validate(bad, V5_1)
                except SchemaValidationError as exc:
                    failures.append(str(exc))
                else:
                    wrong.append("a broken document passed")

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wrong == []
        assert len(failures) == 800


class TestOfficialSchemaConfiguration:
    """Pointing chfw at a folder that does not hold the official XSDs is a ConfigError."""

    def test_missing_folder(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            official_schemas(tmp_path / "nowhere")

    def test_missing_version_folder_is_named(self, tmp_path: Path) -> None:
        schemas = official_schemas(tmp_path)
        with pytest.raises(ConfigError, match=f"folder {tmp_path / '5.1'} is missing"):
            schemas.validate(n64(), V5_1)

    def test_missing_file(self, tmp_path: Path) -> None:
        (tmp_path / "5.1").mkdir()
        with pytest.raises(ConfigError, match=r"cannot read official DUIS 5\.1 schema"):
            official_schemas(tmp_path).schema_for(V5_1)

    def test_file_not_xml(self, tmp_path: Path) -> None:
        (tmp_path / "5.1").mkdir()
        (tmp_path / "5.1" / "DUIS Schema V5.1.xsd").write_text("not xml")
        with pytest.raises(ConfigError, match="is not XML"):
            official_schemas(tmp_path).schema_for(V5_1)

    def test_schema_that_does_not_compile(self, tmp_path: Path) -> None:
        (tmp_path / "5.1").mkdir()
        (tmp_path / "5.1" / "DUIS Schema V5.1.xsd").write_text(
            '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
            '<xs:import namespace="urn:x" schemaLocation="Missing Schema.xsd"/>'
            '<xs:element name="Response" type="undeclared"/></xs:schema>'
        )
        with pytest.raises(ConfigError, match="does not compile"):
            official_schemas(tmp_path).schema_for(V5_1)

    def test_same_folder_same_set(self, tmp_path: Path) -> None:
        assert official_schemas(tmp_path) is official_schemas(tmp_path / ".")


@pytest.fixture(scope="module")
def official(dcc_reference: Path) -> SchemaSet:
    return official_schemas(dcc_reference / "xsd")


@pytest.mark.reference
class TestOfficialSchemas:
    """Against DCC's own XSDs: N64 is valid from 5.1 on and not in 5.0; N999 everywhere."""

    @pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
    @pytest.mark.parametrize("version", [V5_1, V5_4], ids=str)
    def test_n64_valid_from_5_1(
        self, official: SchemaSet, version: DuisVersion, signed: bool
    ) -> None:
        document = with_signature(n64(version)) if signed else n64(version)
        official.validate(document, version)

    @pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
    def test_n64_invalid_in_5_0(self, official: SchemaSet, signed: bool) -> None:
        document = n64().replace(b'schemaVersion="5.1"', b'schemaVersion="5.0"')
        document = with_signature(document) if signed else document
        with pytest.raises(SchemaValidationError, match=r"official.*DUIS 5\.0.*'N64'"):
            official.validate(document, V5_0)

    @pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
    @pytest.mark.parametrize("version", REFERENCE_VERSIONS, ids=str)
    def test_n999_valid_everywhere(
        self, official: SchemaSet, version: DuisVersion, signed: bool
    ) -> None:
        document = with_signature(n999(version)) if signed else n999(version)
        official.validate(document, version)

    @settings(max_examples=50)
    @given(n64_inputs(versions=(V5_1, V5_4)))
    def test_generated_n64_valid(self, official: SchemaSet, inputs: dict[str, Any]) -> None:
        official.validate(render_n64(**inputs), inputs["duis_version"])

    @settings(max_examples=50)
    @given(n999_inputs(versions=REFERENCE_VERSIONS))
    def test_generated_n999_valid(self, official: SchemaSet, inputs: dict[str, Any]) -> None:
        official.validate(render_n999(**inputs), inputs["duis_version"])

    @pytest.mark.parametrize(
        ("name", "version", "document"), MALFORMED, ids=[m[0] for m in MALFORMED]
    )
    def test_bundled_rejections_agree(
        self, official: SchemaSet, name: str, version: DuisVersion, document: bytes
    ) -> None:
        with pytest.raises(SchemaValidationError):
            official.validate(document, version)

    def test_official_schema_checks_the_signature_structure(self, official: SchemaSet) -> None:
        scrambled = SIGNATURE.replace(b"<ds:SignedInfo>", b"<ds:Nonsense/><ds:SignedInfo>")
        with pytest.raises(SchemaValidationError, match="Nonsense"):
            official.validate(with_signature(n64(), scrambled), V5_1)

    def test_version_without_reference_folder(self, official: SchemaSet) -> None:
        with pytest.raises(ConfigError, match=r"DUIS 5\.2 .*5\.2 is missing"):
            official.validate(n64(DuisVersion(5, 2)), DuisVersion(5, 2))

    def test_compiled_once(self, official: SchemaSet, dcc_reference: Path) -> None:
        assert official_schemas(dcc_reference / "xsd") is official
        assert official.schema_for(V5_1) is official.schema_for(V5_1)

    def test_folder_path_with_spaces(self, dcc_reference: Path, tmp_path: Path) -> None:
        # Not a copy: a link to DCC's folder under a name with a space in it.
        folder = tmp_path / "DCC schemas"
        folder.mkdir()
        (folder / "5.1").symlink_to(dcc_reference / "xsd" / "5.1", target_is_directory=True)
        official_schemas(folder).validate(with_signature(n64()), V5_1)
