"""The encoders build byte-exact General Signing messages and refuse what cannot be encoded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from chfw.core.domain import ActivationOutcome, ActivationResult, FirmwareVersion, OutcomeSource
from chfw.core.gbcs import (
    CraFlag,
    decode_message,
    encode_accepted,
    encode_alert,
    encode_message,
    encode_outcome,
    encode_response,
)
from chfw.exceptions import InvalidValueError
from tests.core.gbcs.builders import DEVICE, SUPPLIER

VERSION = FirmwareVersion.parse("0123ABCF")
HEADER_TO_TITLES = "08 00DB1234567890A0 08 90B3D51F30010000"


def hex_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def outcome(**changes: Any) -> ActivationOutcome:
    values: dict[str, Any] = {
        "device_id": DEVICE,
        "originator_counter": 1001,
        "result": ActivationResult.SUCCESS,
        "firmware_version": VERSION,
        "source": OutcomeSource.ALERT,
        "message_code": 0x00CA,
        "message_counter": 2000,
        "recipient": SUPPLIER,
        "occurred_at": datetime(2030, 1, 15, 9, tzinfo=UTC),
        "alert_code": 0x8F66,
    }
    values.update(changes)
    return ActivationOutcome(**values)


class TestBytes:
    """Unsigned messages, byte for byte (docs/domain.md, "The General Signing wrapper")."""

    def test_accepted(self) -> None:
        data = encode_accepted(device_id=DEVICE, recipient=SUPPLIER, counter=1001)
        assert data == hex_bytes(
            f"DF 09 02 00000000000003E9 {HEADER_TO_TITLES} 00 02 0012 02 0500 00"
        )

    def test_response_with_date_time(self) -> None:
        data = encode_response(
            device_id=DEVICE,
            recipient=SUPPLIER,
            counter=1005,
            result=ActivationResult.NO_IMAGE_HELD,
            firmware_version=VERSION,
            date_time=datetime(2015, 1, 1, tzinfo=UTC),
        )
        assert data == hex_bytes(
            f"DF 09 02 00000000000003ED {HEADER_TO_TITLES} 0C 07DF0101FF000000008000FF "
            "02 0012 0B 30 09 02 01 01 04 04 0123ABCF 00"
        )

    def test_success_alert(self) -> None:
        data = encode_alert(
            device_id=DEVICE,
            recipient=SUPPLIER,
            message_counter=2000,
            originator_counter=1001,
            result=ActivationResult.SUCCESS,
            firmware_version=VERSION,
            executed_at=datetime(2030, 1, 15, 9, tzinfo=UTC),
        )
        assert data == hex_bytes(
            f"DF 09 03 00000000000007D0 {HEADER_TO_TITLES} 00 02 00CA "
            "27 30 25 02 03 008F66 18 0F"
            + b"20300115090000Z".hex()
            + "02 02 03E9 30 09 02 01 00 04 04 0123ABCF 00"
        )

    def test_failure_alert_uses_8f67(self) -> None:
        data = encode_alert(
            device_id=DEVICE,
            recipient=SUPPLIER,
            message_counter=2001,
            originator_counter=1004,
            result=ActivationResult.HASH_MISMATCH,
            firmware_version=VERSION,
            executed_at=datetime(2030, 1, 1, tzinfo=UTC),
        )
        assert hex_bytes("02 03 008F67") in data
        assert hex_bytes("30 09 02 01 02 04 04 0123ABCF") in data

    def test_generic_message(self) -> None:
        data = encode_message(
            cra=CraFlag.COMMAND,
            counter=(1 << 64) - 1,
            originator=SUPPLIER,
            recipient=DEVICE,
            message_code=0xFFFF,
            content=bytes(200),
        )
        assert data[:11] == hex_bytes("DF 09 01 FFFFFFFFFFFFFFFF")
        assert data[29:35] == hex_bytes("00 02 FFFF 81 C8")
        assert decode_message(data).content == bytes(200)


class TestSigned:
    """With a device key the signature is 64 raw octets r‖s over signed_bytes."""

    def test_signature_verifies_with_plain_cryptography(
        self, device_key: ec.EllipticCurvePrivateKey
    ) -> None:
        data = encode_accepted(
            device_id=DEVICE, recipient=SUPPLIER, counter=1001, signing_key=device_key
        )
        assert data[-65] == 0x40
        signed, raw = data[1:-65], data[-64:]
        der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
        device_key.public_key().verify(der, signed, ec.ECDSA(hashes.SHA256()))

    def test_other_curves_are_refused(self) -> None:
        key = ec.generate_private_key(ec.SECP384R1())
        with pytest.raises(InvalidValueError, match="P-256, not secp384r1"):
            encode_accepted(device_id=DEVICE, recipient=SUPPLIER, counter=1, signing_key=key)


class TestRefused:
    """Values the wire format cannot carry are refused, never wrapped or truncated."""

    @pytest.mark.parametrize("counter", [-1, 1 << 64])
    def test_counter_range(self, counter: int) -> None:
        with pytest.raises(InvalidValueError, match="transaction counter"):
            encode_accepted(device_id=DEVICE, recipient=SUPPLIER, counter=counter)

    @pytest.mark.parametrize("counter", [-1, 1 << 64])
    def test_originator_counter_range(self, counter: int) -> None:
        with pytest.raises(InvalidValueError, match="originator counter"):
            encode_alert(
                device_id=DEVICE,
                recipient=SUPPLIER,
                message_counter=1,
                originator_counter=counter,
                result=ActivationResult.SUCCESS,
                firmware_version=VERSION,
                executed_at=datetime(2030, 1, 1, tzinfo=UTC),
            )

    @pytest.mark.parametrize("code", [-1, 0x10000])
    def test_message_code_range(self, code: int) -> None:
        with pytest.raises(InvalidValueError, match="two octets"):
            encode_message(
                cra=CraFlag.RESPONSE,
                counter=1,
                originator=DEVICE,
                recipient=SUPPLIER,
                message_code=code,
                content=b"",
            )

    def test_accepted_has_no_execution_outcome(self) -> None:
        with pytest.raises(InvalidValueError, match="encode_accepted"):
            encode_response(
                device_id=DEVICE,
                recipient=SUPPLIER,
                counter=1,
                result=ActivationResult.ACCEPTED,
                firmware_version=VERSION,
            )


class TestEncodeOutcome:
    """encode_outcome refuses outcomes no CS06 message could carry."""

    def test_alert(self) -> None:
        data = encode_outcome(outcome())
        assert hex_bytes("02 03 008F66") in data
        assert data[2] == CraFlag.ALERT.value

    def test_response_and_accepted(self) -> None:
        response = outcome(
            source=OutcomeSource.RESPONSE,
            message_code=0x0012,
            message_counter=1001,
            alert_code=None,
            occurred_at=None,
        )
        assert encode_outcome(response).endswith(hex_bytes("0B 30 09 02 01 00 04 04 0123ABCF 00"))
        accepted = outcome(
            source=OutcomeSource.RESPONSE,
            message_code=0x0012,
            message_counter=1001,
            alert_code=None,
            result=ActivationResult.ACCEPTED,
            firmware_version=None,
        )
        assert encode_outcome(accepted).endswith(hex_bytes("02 0500 00"))

    @pytest.mark.parametrize(
        ("changes", "fragment"),
        [
            ({"message_code": 0x0012}, "has message code 0x00CA"),
            ({"occurred_at": None}, "executionDateTime"),
            ({"result": ActivationResult.ACCEPTED, "firmware_version": None}, "execution outcome"),
            ({"alert_code": 0x8F67}, "contradicts"),
            (
                {"source": OutcomeSource.RESPONSE, "message_code": 0x0012, "alert_code": None},
                "echoes the command's counter",
            ),
            (
                {
                    "source": OutcomeSource.RESPONSE,
                    "message_code": 0x0012,
                    "message_counter": 1001,
                },
                "no alert code",
            ),
        ],
    )
    def test_inconsistent(self, changes: dict[str, Any], fragment: str) -> None:
        with pytest.raises(InvalidValueError, match=fragment):
            encode_outcome(outcome(**changes))
