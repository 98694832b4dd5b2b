"""Who signs: a small interface, a PEM-key implementation, and development identities.

Signing sits behind :class:`Signer` so that a hardware security module can
replace the PEM key later without touching the XML code: all the XML side
needs is the certificate's issuer and serial (for KeyInfo) and raw r‖s.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from chfw.core.clock import utc_now
from chfw.exceptions import SigningError

P256_COORDINATE_BYTES = 32
"""Each of r and s is 32 bytes for P-256, so SignatureValue decodes to 64 bytes."""

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_DEVELOPMENT_VALIDITY = dt.timedelta(days=3652)


@runtime_checkable
class Signer(Protocol):
    """What XML signing needs from a key holder (a PEM file today, an HSM tomorrow)."""

    @property
    def issuer_name(self) -> str:
        """The certificate's issuer as an RFC 2253 / RFC 4514 string (X509IssuerName)."""
        ...

    @property
    def serial_number(self) -> int:
        """The certificate's serial number (X509SerialNumber, written in decimal)."""
        ...

    @property
    def certificate(self) -> x509.Certificate:
        """The signer's certificate, for receivers' trust stores."""
        ...

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 with SHA-256 over ``data``, as raw r‖s (64 bytes), not DER."""
        ...


class PemSigner:
    """A :class:`Signer` backed by an in-memory P-256 private key and its certificate."""

    __slots__ = ("_certificate", "_issuer_name", "_key", "_serial_number")

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise SigningError(_not_p256("signing key", key))
        if key.public_key() != certificate.public_key():
            raise SigningError(
                "the signing key does not match the certificate's public key "
                f"(certificate subject {certificate.subject.rfc4514_string()!r}, "
                f"serial {certificate.serial_number}); pair each key with the certificate "
                "issued for it"
            )
        self._key = key
        self._certificate = certificate
        self._issuer_name = certificate.issuer.rfc4514_string()
        self._serial_number = certificate.serial_number

    @classmethod
    def from_pem(
        cls, key_pem: bytes, cert_pem: bytes, *, password: bytes | None = None
    ) -> PemSigner:
        """Load an unencrypted (or ``password``-protected) PEM key and a PEM certificate."""
        try:
            key = serialization.load_pem_private_key(key_pem, password=password)
        except TypeError as exc:
            raise SigningError(
                f"the signing key could not be loaded ({exc}); give the password, or use an "
                "unencrypted PKCS#8 key"
            ) from None
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise SigningError(
                f"the signing key is not a readable PEM private key ({exc}); expected a PKCS#8 "
                "'-----BEGIN PRIVATE KEY-----' EC P-256 key (`chfw keys create` makes one)"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SigningError(_not_p256("signing key", key))
        try:
            certificate = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise SigningError(
                f"the signing certificate is not a readable PEM X.509 certificate ({exc}); "
                "expected '-----BEGIN CERTIFICATE-----'"
            ) from None
        return cls(key, certificate)

    @classmethod
    def from_files(
        cls, key_path: str | Path, cert_path: str | Path, *, password: bytes | None = None
    ) -> PemSigner:
        """Read the key and certificate files; any problem names the file concerned."""
        key_pem = _read(Path(key_path), "signing key")
        cert_pem = _read(Path(cert_path), "signing certificate")
        try:
            return cls.from_pem(key_pem, cert_pem, password=password)
        except SigningError as exc:
            raise SigningError(f"{exc} (key {key_path}, certificate {cert_path})") from None

    @property
    def issuer_name(self) -> str:
        return self._issuer_name

    @property
    def serial_number(self) -> int:
        return self._serial_number

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def sign(self, data: bytes) -> bytes:
        return der_to_raw(self._key.sign(data, _ECDSA_SHA256))

    def __repr__(self) -> str:
        return f"PemSigner(issuer={self._issuer_name!r}, serial={self._serial_number})"


def create_development_identity(
    common_name: str = "chfw development signer",
    *,
    now: dt.datetime | None = None,
    validity: dt.timedelta = _DEVELOPMENT_VALIDITY,
) -> tuple[bytes, bytes]:
    """A new P-256 key (PKCS#8 PEM) and a self-signed certificate for it (PEM).

    For development and tests only: production keys come from the DCC PKI.
    """
    if not common_name:
        raise SigningError("a development identity needs a non-empty common name")
    start = (now or utc_now()).replace(microsecond=0)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)


def der_to_raw(der: bytes) -> bytes:
    """Raw r‖s (64 bytes) from a DER ECDSA P-256 signature ``SEQUENCE { r INTEGER, s INTEGER }``.

    Sliced by hand on the hot path (5× cheaper than parsing the ASN.1 here:
    it is a third of chfw's signing overhead); anything unusual is left to
    cryptography's parser.
    """
    width = P256_COORDINATE_BYTES
    s_at = 4 + der[3]
    if (
        der[0] == 0x30
        and der[1] == len(der) - 2
        and der[2] == 0x02
        and der[3] <= width + 1
        and len(der) > s_at + 1
        and der[s_at] == 0x02
        and der[s_at + 1] <= width + 1
        and s_at + 2 + der[s_at + 1] == len(der)
    ):
        return der[4:s_at][-width:].rjust(width, b"\0") + der[s_at + 2 :][-width:].rjust(
            width, b"\0"
        )
    r, s = decode_dss_signature(der)
    return r.to_bytes(width, "big") + s.to_bytes(width, "big")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def _not_p256(what: str, key: object) -> str:
    curve = getattr(key, "curve", None)
    found = f"EC {curve.name}" if curve is not None else type(key).__name__
    return f"the {what} must be an EC P-256 (secp256r1) key as DUIS signing requires; got {found}"
