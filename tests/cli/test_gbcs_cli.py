"""`chfw gbcs decode` prints one JSON object, or exits 2 with a message and no traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner, Result

from chfw.cli.gbcs import app
from chfw.core.domain import ActivationResult, DeviceId, Eui64, FirmwareVersion
from chfw.core.gbcs import encode_accepted, encode_alert, encode_response

REQUIRED_KEYS = {
    "device_id",
    "cra",
    "originator_counter",
    "message_code",
    "outcome",
    "firmware_version",
}
CH = DeviceId.parse("00-1D-A1-00-00-00-00-42")
SUPPLIER = Eui64.parse("90-B3-D5-1F-30-02-00-00")

runner = CliRunner()


def decode(*args: str, stdin: str | bytes | None = None) -> Result:
    return runner.invoke(app, ["decode", *args], input=stdin)


def decoded(*args: str, stdin: str | None = None) -> dict[str, Any]:
    result = decode(*args, stdin=stdin)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    value = json.loads(lines[0])
    assert isinstance(value, dict)
    assert value.keys() >= REQUIRED_KEYS
    return value


def refused(result: Result, code: int, fragment: str) -> None:
    assert result.exit_code == code
    assert result.stdout == ""
    assert fragment in result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def response_hex(key: ec.EllipticCurvePrivateKey | None = None) -> str:
    return encode_response(
        device_id=CH,
        recipient=SUPPLIER,
        counter=1234,
        result=ActivationResult.SUCCESS,
        firmware_version=FirmwareVersion.parse("02010300"),
        date_time=datetime(2015, 1, 1, tzinfo=UTC),
        signing_key=key,
    ).hex()


class TestDecode:
    """The JSON keys and values for each kind of outcome."""

    def test_response(self) -> None:
        value = decoded(response_hex())
        assert value == {
            "device_id": "00-1D-A1-00-00-00-00-42",
            "cra": "response",
            "originator_counter": 1234,
            "message_counter": 1234,
            "message_code": "0x0012",
            "outcome": "success",
            "firmware_version": "02010300",
            "alert_code": None,
            "recipient": "90-B3-D5-1F-30-02-00-00",
            "date_time": "2015-01-01T00:00:00Z",
            "occurred_at": "2015-01-01T00:00:00Z",
            "signature": "absent",
        }

    def test_accepted(self) -> None:
        data = encode_accepted(device_id=CH, recipient=SUPPLIER, counter=7)
        value = decoded(data.hex())
        assert (value["outcome"], value["firmware_version"], value["date_time"]) == (
            "accepted",
            None,
            None,
        )
        assert value["originator_counter"] == 7

    def test_alert(self) -> None:
        data = encode_alert(
            device_id=CH,
            recipient=SUPPLIER,
            message_counter=(1 << 64) - 1,
            originator_counter=1234,
            result=ActivationResult.ACTIVATION_FAILURE,
            firmware_version=FirmwareVersion.parse("0a0b"),
            executed_at=datetime(2030, 1, 15, 9, tzinfo=UTC),
        )
        value = decoded(data.hex())
        assert value["cra"] == "alert"
        assert value["originator_counter"] == 1234
        assert value["message_counter"] == (1 << 64) - 1
        assert value["message_code"] == "0x00CA"
        assert value["alert_code"] == "0x8F67"
        assert value["outcome"] == "activation_failure"
        assert value["firmware_version"] == "0A0B"
        assert value["occurred_at"] == "2030-01-15T09:00:00Z"

    def test_stdin_with_whitespace(self) -> None:
        text = response_hex()
        spaced = " ".join(text[i : i + 2] for i in range(0, len(text), 2))
        assert decoded("-", stdin=f"0x{spaced}\n") == decoded(response_hex())

    def test_help_documents_the_keys(self) -> None:
        result = runner.invoke(app, ["decode", "--help"])
        assert result.exit_code == 0
        for key in REQUIRED_KEYS:
            assert key in result.stdout


class TestBadInput:
    """Undecodable input: exit 2, the error and its offset on stderr."""

    def test_truncated(self) -> None:
        refused(
            decode(response_hex()[:40]),
            2,
            "message ends before recipient system title length is complete: "
            "needs 1 byte(s), 0 left (at byte offset 20)",
        )

    def test_not_hex(self) -> None:
        refused(decode("DF09ZZ"), 2, "'Z' is not a hex digit (at byte offset 2)")

    def test_command(self) -> None:
        refused(decode("DD" + response_hex()[2:]), 2, "General Ciphering")

    def test_trailing_bytes(self) -> None:
        refused(decode(response_hex() + "00"), 2, "1 unexpected byte(s)")

    def test_empty_stdin(self) -> None:
        refused(decode("-", stdin=""), 2, "(at byte offset 0)")

    def test_non_utf8_stdin(self) -> None:
        refused(decode("-", stdin=b"DF\xff09"), 2, "is not a hex digit (at byte offset 1)")


class TestVerify:
    """--verify-with checks the hub's signature with a PEM certificate or public key."""

    def write_certificate(self, tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CH.hex)])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now.replace(year=now.year + 1))
            .sign(key, hashes.SHA256())
        )
        path = tmp_path / "ch.pem"
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def test_verified_with_certificate(
        self, tmp_path: Path, key: ec.EllipticCurvePrivateKey
    ) -> None:
        cert = self.write_certificate(tmp_path, key)
        assert decoded(response_hex(key), "--verify-with", str(cert))["signature"] == "verified"

    def test_verified_with_public_key(
        self, tmp_path: Path, key: ec.EllipticCurvePrivateKey
    ) -> None:
        path = tmp_path / "ch.pub.pem"
        path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        assert decoded(response_hex(key), "--verify-with", str(path))["signature"] == "verified"

    def test_present_without_verification(self, key: ec.EllipticCurvePrivateKey) -> None:
        assert decoded(response_hex(key))["signature"] == "present"

    def test_wrong_key_exits_1(self, tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
        cert = self.write_certificate(tmp_path, ec.generate_private_key(ec.SECP256R1()))
        refused(decode(response_hex(key), "--verify-with", str(cert)), 1, "does not verify")

    def test_unsigned_exits_1(self, tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
        cert = self.write_certificate(tmp_path, key)
        refused(decode(response_hex(), "--verify-with", str(cert)), 1, "carries no signature")

    def test_missing_file_exits_2(self, tmp_path: Path) -> None:
        refused(decode(response_hex(), "--verify-with", str(tmp_path / "no.pem")), 2, "cannot read")

    def test_garbage_file_exits_2(self, tmp_path: Path) -> None:
        path = tmp_path / "junk.pem"
        path.write_text("not a pem\n")
        refused(decode(response_hex(), "--verify-with", str(path)), 2, "neither a PEM certificate")

    def test_non_ec_key_exits_2(self, tmp_path: Path) -> None:
        path = tmp_path / "ed.pem"
        path.write_bytes(
            ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        refused(decode(response_hex(), "--verify-with", str(path)), 2, "not an EC P-256 key")


@pytest.mark.reference
class TestReferenceVectors:
    """The RTDS vectors through the CLI, signatures checked against the keystore."""

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            (
                "CS06_11.3_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX",
                ("response", 1000, "0x0012", "success", "0123ABCE"),
            ),
            (
                "CS06_11.3_FUTURE_DATED_SUCCESS_RESPONSE_GBCS.HEX",
                ("response", 1001, "0x0012", "accepted", None),
            ),
            (
                "CS06_11.3_8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX",
                ("alert", 1001, "0x00CA", "success", "0123ABCF"),
            ),
            (
                "CS06_11.3_8F67_FUTURE_DATED_ERROR_ALERT_GBCS.HEX",
                ("alert", 1004, "0x00CA", "hash_mismatch", "0123ABCF"),
            ),
        ],
    )
    def test_vector_from_stdin(
        self, dcc_reference: Path, name: str, expected: tuple[object, ...]
    ) -> None:
        gbcs = dcc_reference / "gbcs"
        cert = gbcs / "keystore" / "00db1234567890a0-ds.pem"
        value = decoded("-", "--verify-with", str(cert), stdin=(gbcs / name).read_text())
        assert value["device_id"] == "00-DB-12-34-56-78-90-A0"
        keys = ("cra", "originator_counter", "message_code", "outcome", "firmware_version")
        assert tuple(value[key] for key in keys) == expected
        assert value["signature"] == "verified"

    def test_command_vector_is_refused(self, dcc_reference: Path) -> None:
        text = (dcc_reference / "gbcs" / "CS06_11.3_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX").read_text()
        refused(decode(text), 2, "General Ciphering")


class TestRegistered:
    """The group is reachable as `chfw gbcs decode`."""

    def test_through_the_main_app(self) -> None:
        from chfw.cli import app as main_app

        result = runner.invoke(main_app, ["gbcs", "decode", response_hex()])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["device_id"] == "00-1D-A1-00-00-00-00-42"
