"""Interop with DCC's RTDS CS06 vectors: outcomes as their README states, signatures verified."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from chfw.core.domain import ActivationResult, DeviceId, Eui64, FirmwareVersion, OutcomeSource
from chfw.core.gbcs import (
    decode_message,
    decode_outcome,
    encode_outcome,
    message_bytes,
    verify_device_signature,
)
from chfw.exceptions import DeviceSignatureError, GbcsMessageCodeError, GbcsTagError

pytestmark = pytest.mark.reference

CH = DeviceId.parse("00-DB-12-34-56-78-90-A0")
SUPPLIER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
RTDS_RESPONSE_TIME = datetime(2015, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Expected:
    """One row of dcc-reference/gbcs/README.md."""

    source: OutcomeSource
    originator_counter: int
    message_counter: int
    result: ActivationResult
    firmware_version: str | None
    occurred_at: datetime
    alert_code: int | None = None


def response(counter: int, result: ActivationResult, version: str | None) -> Expected:
    return Expected(OutcomeSource.RESPONSE, counter, counter, result, version, RTDS_RESPONSE_TIME)


EXPECTED = {
    "CS06_11.3_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX": response(
        1000, ActivationResult.SUCCESS, "0123ABCE"
    ),
    "CS06_11.3_IMMEDIATE_ERROR_RESPONSE_GBCS.HEX": response(
        1005, ActivationResult.NO_IMAGE_HELD, "0123ABCF"
    ),
    "CS06_11.3_FUTURE_DATED_SUCCESS_RESPONSE_GBCS.HEX": response(
        1001, ActivationResult.ACCEPTED, None
    ),
    "CS06_11.3_FUTURE_DATED_ERROR_RESPONSE_GBCS.HEX": response(
        1004, ActivationResult.ACCEPTED, None
    ),
    "CS06_11.3_CANCELLATION_SUCCESS_RESPONSE_GBCS.HEX": response(
        1002, ActivationResult.ACCEPTED, None
    ),
    "CS06_11.3_8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX": Expected(
        OutcomeSource.ALERT,
        1001,
        2000,
        ActivationResult.SUCCESS,
        "0123ABCF",
        datetime(2030, 1, 15, 9, tzinfo=UTC),
        0x8F66,
    ),
    "CS06_11.3_8F67_FUTURE_DATED_ERROR_ALERT_GBCS.HEX": Expected(
        OutcomeSource.ALERT,
        1004,
        2001,
        ActivationResult.HASH_MISMATCH,
        "0123ABCF",
        datetime(2030, 1, 1, tzinfo=UTC),
        0x8F67,
    ),
}
COMMAND_KINDS = (
    "IMMEDIATE_SUCCESS",
    "IMMEDIATE_ERROR",
    "FUTURE_DATED_SUCCESS",
    "FUTURE_DATED_ERROR",
    "CANCELLATION_SUCCESS",
)


def vector(dcc_reference: Path, name: str) -> str:
    return (dcc_reference / "gbcs" / name).read_text()


@pytest.fixture(scope="module")
def ch_certificate(dcc_reference: Path) -> x509.Certificate:
    """The CH's device signing certificate from the RTDS keystore."""
    pem = (dcc_reference / "gbcs" / "keystore" / "00db1234567890a0-ds.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem)


@pytest.fixture(scope="module")
def supplier_certificate(dcc_reference: Path) -> x509.Certificate:
    pem = (dcc_reference / "gbcs" / "keystore" / "90b3d51f30010000-ds.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem)


class TestVectors:
    """Every response and alert decodes to its README row."""

    def test_every_vector_is_covered(self, dcc_reference: Path) -> None:
        names = {path.name for path in (dcc_reference / "gbcs").glob("*.HEX")}
        commands = {
            f"CS06_11.3_{kind}_{role}_GBCS.HEX"
            for kind in COMMAND_KINDS
            for role in ("COMMAND", "PRECOMMAND")
        }
        assert names == set(EXPECTED) | commands

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_decodes_as_documented(self, dcc_reference: Path, name: str) -> None:
        expected = EXPECTED[name]
        outcome = decode_outcome(vector(dcc_reference, name))
        assert outcome.device_id == CH
        assert outcome.recipient == SUPPLIER
        assert outcome.source is expected.source
        assert outcome.originator_counter == expected.originator_counter
        assert outcome.message_counter == expected.message_counter
        assert outcome.result is expected.result
        assert outcome.occurred_at == expected.occurred_at
        assert outcome.alert_code == expected.alert_code
        version = expected.firmware_version
        assert outcome.firmware_version == (
            None if version is None else FirmwareVersion.parse(version)
        )

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_device_signature_verifies(
        self, dcc_reference: Path, ch_certificate: x509.Certificate, name: str
    ) -> None:
        verify_device_signature(decode_message(vector(dcc_reference, name)), ch_certificate)

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_encoder_reproduces_the_signed_bytes(self, dcc_reference: Path, name: str) -> None:
        original = message_bytes(vector(dcc_reference, name))
        rebuilt = encode_outcome(decode_outcome(original))
        assert rebuilt[:-1] == original[:-65]
        assert decode_message(rebuilt).signed_bytes == decode_message(original).signed_bytes


class TestSignatureFailures:
    """Altered vectors and the wrong certificate do not verify."""

    @pytest.mark.parametrize("where", ["counter", "content", "signature"])
    def test_flipped_byte(
        self, dcc_reference: Path, ch_certificate: x509.Certificate, where: str
    ) -> None:
        name = "CS06_11.3_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX"
        data = bytearray(message_bytes(vector(dcc_reference, name)))
        position = {"counter": 10, "content": len(data) - 66, "signature": len(data) - 1}[where]
        data[position] ^= 0x01
        parsed = decode_message(bytes(data))
        with pytest.raises(DeviceSignatureError, match="does not verify"):
            verify_device_signature(parsed, ch_certificate)

    def test_wrong_certificate(
        self, dcc_reference: Path, supplier_certificate: x509.Certificate
    ) -> None:
        name = "CS06_11.3_8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX"
        parsed = decode_message(vector(dcc_reference, name))
        with pytest.raises(DeviceSignatureError, match="does not verify"):
            verify_device_signature(parsed, supplier_certificate)


class TestCommandsRefused:
    """Commands are not outcomes: the wrapper or the CRA flag says so."""

    @pytest.mark.parametrize("kind", COMMAND_KINDS)
    def test_general_ciphering_command(self, dcc_reference: Path, kind: str) -> None:
        with pytest.raises(GbcsTagError, match="General Ciphering") as caught:
            decode_outcome(vector(dcc_reference, f"CS06_11.3_{kind}_COMMAND_GBCS.HEX"))
        assert caught.value.offset == 0

    @pytest.mark.parametrize("kind", COMMAND_KINDS)
    def test_unsigned_precommand(self, dcc_reference: Path, kind: str) -> None:
        with pytest.raises(GbcsMessageCodeError, match="01 \\(command\\)") as caught:
            decode_outcome(vector(dcc_reference, f"CS06_11.3_{kind}_PRECOMMAND_GBCS.HEX"))
        assert caught.value.offset == 2
