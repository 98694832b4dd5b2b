"""Device signatures verify with the hub's key or certificate and fail on any change."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from chfw.core.gbcs import decode_message, verify_device_signature
from chfw.exceptions import DeviceSignatureError, GbcsDecodeError
from tests.core.gbcs.builders import alert, alert_content, execution, message


class TestVerify:
    """A good signature passes quietly; anything else is DeviceSignatureError."""

    def test_verifies_with_public_key_and_certificate(
        self, device_key: ec.EllipticCurvePrivateKey, device_certificate: x509.Certificate
    ) -> None:
        parsed = decode_message(alert(alert_content(), key=device_key))
        verify_device_signature(parsed, device_key.public_key())
        verify_device_signature(parsed, device_certificate)

    def test_absent_signature(self, device_key: ec.EllipticCurvePrivateKey) -> None:
        parsed = decode_message(message(execution(0)))
        with pytest.raises(DeviceSignatureError, match="carries no signature"):
            verify_device_signature(parsed, device_key.public_key())

    def test_wrong_key(
        self, device_key: ec.EllipticCurvePrivateKey, other_key: ec.EllipticCurvePrivateKey
    ) -> None:
        parsed = decode_message(message(execution(0), key=device_key))
        with pytest.raises(DeviceSignatureError, match="does not verify"):
            verify_device_signature(parsed, other_key.public_key())

    @pytest.mark.parametrize("position", [1, 2, 10, 15, 25, 31, 33, 36, 40, 44, 60, 108])
    def test_any_flipped_byte_fails(
        self, device_key: ec.EllipticCurvePrivateKey, position: int
    ) -> None:
        data = bytearray(message(execution(0), key=device_key))
        assert len(data) == 110
        data[position] ^= 0x01
        # A flip either breaks the structure (refused before verification) or the signature.
        with pytest.raises((GbcsDecodeError, DeviceSignatureError)):
            verify_device_signature(decode_message(bytes(data)), device_key.public_key())

    def test_zero_signature_fails_cleanly(self, device_key: ec.EllipticCurvePrivateKey) -> None:
        parsed = decode_message(message(execution(0), key=device_key))
        with pytest.raises(DeviceSignatureError, match="does not verify"):
            verify_device_signature(replace(parsed, signature=bytes(64)), device_key.public_key())

    def test_other_curve_is_refused(self, device_key: ec.EllipticCurvePrivateKey) -> None:
        parsed = decode_message(message(execution(0), key=device_key))
        p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
        with pytest.raises(DeviceSignatureError, match="on secp384r1"):
            verify_device_signature(parsed, p384)

    def test_non_ec_key_is_refused(self, device_key: ec.EllipticCurvePrivateKey) -> None:
        parsed = decode_message(message(execution(0), key=device_key))
        edwards = ed25519.Ed25519PrivateKey.generate().public_key()
        with pytest.raises(DeviceSignatureError, match="EC P-256; got Ed25519PublicKey"):
            verify_device_signature(parsed, edwards)  # type: ignore[arg-type]
