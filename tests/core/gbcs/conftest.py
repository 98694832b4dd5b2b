"""Device keys for signing test messages: generated once per session, never stored."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@pytest.fixture(scope="session")
def device_key() -> ec.EllipticCurvePrivateKey:
    """A stand-in for a Communications Hub's ECDSA P-256 signing key."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def other_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key that did not sign anything it is checked against."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def device_certificate(device_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A self-signed certificate carrying ``device_key``'s public half."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "00DB1234567890A0")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(device_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(device_key, hashes.SHA256())
    )
