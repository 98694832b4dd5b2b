"""Check a Communications Hub's GBCS signature with its public key.

GBCS carries ECDSA P-256 signatures as raw r‖s (64 octets) over every byte
after the leading DF tag through the end of the content; cryptography wants
DER, so the two halves are re-encoded before verifying with SHA-256.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from chfw.core.gbcs.message import SIGNATURE_LENGTH, GeneralSigningMessage
from chfw.exceptions import DeviceSignatureError

_HALF = SIGNATURE_LENGTH // 2


def verify_device_signature(
    message: GeneralSigningMessage,
    public_key: ec.EllipticCurvePublicKey | x509.Certificate,
) -> None:
    """Return quietly when ``message`` carries a valid signature by ``public_key``.

    Accepts the device's P-256 public key or its certificate (whose key is
    used; the certificate itself is not validated here). Raises
    ``DeviceSignatureError`` when the signature is absent or does not verify.
    """
    key = public_key.public_key() if isinstance(public_key, x509.Certificate) else public_key
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise DeviceSignatureError(
            f"a GBCS device key is EC P-256; got {type(key).__name__}"
            + (f" on {key.curve.name}" if isinstance(key, ec.EllipticCurvePublicKey) else "")
        )
    device = message.originator
    if message.signature is None:
        raise DeviceSignatureError(
            f"message {message.transaction_counter} from {device} carries no signature (00)"
        )
    r = int.from_bytes(message.signature[:_HALF], "big")
    s = int.from_bytes(message.signature[_HALF:], "big")
    try:
        key.verify(encode_dss_signature(r, s), message.signed_bytes, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise DeviceSignatureError(
            f"device signature on message {message.transaction_counter} from {device} does "
            "not verify with the given key (altered message or wrong key)"
        ) from None
