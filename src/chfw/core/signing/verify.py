"""Verify DUIS signatures: DCC's profile exactly, against certificates we trust.

Anything outside the profile is refused rather than interpreted: one
Signature, the last child of the root, one Reference to the whole document
with only the enveloped-signature transform, and nothing else inside the
Signature (no Object, no foreign elements). With ``URI=""`` the digest
covers the whole document except the Signature, so the caller gets exactly
the content that was signed and signature-wrapping has nowhere to hide.

The digest is recomputed over the inclusive C14N of the document (not over
the raw bytes): third-party documents, DCC's own among them, carry an XML
declaration and namespace declarations that canonical form rewrites.

**What the caller reads is what was signed.** Canonical form drops comments,
turns CDATA sections and character references into text and sorts
attributes, so many documents share one digest -- and a reader of the posted
tree can be told something else: ``<FirmwareVersion>0123<!---->ABCE</...>``
digests as ``0123ABCE`` while ``element.text`` is ``0123`` (the SAML
comment-injection advisories of 2017-2018). So the tree handed back is not
the posted one: it is the digested octets parsed again, in which no comment,
CDATA section or character reference can exist, and a document whose signed
content holds a processing instruction (which canonical form keeps, and
which would cut ``element.text`` the same way) is refused. DUIS documents
carry none.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from chfw.core.clock import utc_now
from chfw.core.signing import profile, strict
from chfw.core.signing.canon import (
    CanonicalizationError,
    canonical_document,
    drop_inter_element_whitespace,
    exclusive_canonical,
)
from chfw.core.signing.names import NameKey, NameSyntaxError, name_key, parse_name_key
from chfw.core.xmlsafe import UnsafeXmlError, parse_untrusted
from chfw.exceptions import ConfigError, VerificationError

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_DIGEST_BYTES = 32
_SERIAL_DIGITS_MAX = 49  # 2**160 - 1 has 49 digits (RFC 5280: serials are at most 20 octets)


def serial_hex(serial: int) -> str:
    """A certificate serial as ``openssl x509 -serial`` prints it: upper-case hex, whole octets."""
    digits = format(serial, "X")
    return digits.zfill(len(digits) + len(digits) % 2)


def _serial(serial: int) -> str:
    return f"{serial} (hex {serial_hex(serial)})"


class TrustStore:
    """The certificates whose signatures we accept, found by issuer name and serial number."""

    __slots__ = ("_by_issuer_serial",)

    def __init__(self, certificates: Iterable[x509.Certificate]) -> None:
        by_issuer_serial: dict[tuple[NameKey, int], x509.Certificate] = {}
        for certificate in certificates:
            key = (name_key(certificate.issuer), certificate.serial_number)
            known = by_issuer_serial.get(key)
            if known is not None and known != certificate:
                raise ConfigError(
                    "two different trusted certificates share issuer "
                    f"{certificate.issuer.rfc4514_string()!r} and serial "
                    f"{_serial(certificate.serial_number)}; a signer could not be told apart "
                    "— keep one"
                )
            by_issuer_serial[key] = certificate
        self._by_issuer_serial = by_issuer_serial

    @classmethod
    def from_pem(cls, *pem_blobs: bytes) -> TrustStore:
        """Certificates from PEM bytes; each blob may hold several certificates."""
        certificates: list[x509.Certificate] = []
        for index, blob in enumerate(pem_blobs):
            certificates.extend(_load_certificates(blob, f"PEM input #{index + 1}"))
        return cls(certificates)

    @classmethod
    def from_files(cls, *paths: str | Path) -> TrustStore:
        """Certificates from PEM files; any problem names the file."""
        certificates: list[x509.Certificate] = []
        for path in map(Path, paths):
            try:
                blob = path.read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read trusted certificate file {path}: {exc.strerror}"
                ) from None
            certificates.extend(_load_certificates(blob, str(path)))
        return cls(certificates)

    def find(self, issuer_name: str, serial_number: int) -> x509.Certificate | None:
        """The trusted certificate with this issuer (RFC 2253 text) and serial, if any.

        Raises :class:`~chfw.core.signing.names.NameSyntaxError` when ``issuer_name``
        is not a distinguished name.
        """
        return self._by_issuer_serial.get((parse_name_key(issuer_name), serial_number))

    def __len__(self) -> int:
        return len(self._by_issuer_serial)

    def __iter__(self) -> Iterator[x509.Certificate]:
        return iter(self._by_issuer_serial.values())


@dataclass(frozen=True, slots=True, eq=False)
class VerifiedDocument:
    """A document whose signature checked out, reduced to exactly what was signed."""

    root: etree._Element
    """The root element of ``content`` parsed again: exactly the signed octets, no Signature."""
    certificate: x509.Certificate
    """The trusted certificate of the signer."""
    digest: bytes
    """SHA-256 of ``content`` (the Reference's DigestValue)."""
    content: bytes
    """The signed octets: inclusive C14N of the document without its Signature."""


def verify_document(
    data: bytes, trust: TrustStore, *, at: dt.datetime | None = None
) -> VerifiedDocument:
    """Check ``data`` is signed in DCC's profile by a certificate in ``trust``.

    ``at`` is when the signer's certificate must be valid (default: now).
    Raises :class:`VerificationError` whose ``reason`` says what was wrong.
    """
    try:
        root = parse_untrusted(data)
    except UnsafeXmlError as exc:
        raise VerificationError(f"unreadable document: {exc}") from None
    signature = _the_signature(root)
    drop_inter_element_whitespace(root)
    parts = _SignatureParts.read(signature)

    certificate = _trusted_certificate(trust, parts.issuer_name, parts.serial_number)
    _check_validity(certificate, at)
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise VerificationError(
            f"the signer's certificate (serial {_serial(certificate.serial_number)}) does not "
            "hold an "
            "EC P-256 key; DUIS signatures are ECDSA P-256"
        )
    root.remove(signature)
    try:
        content = canonical_document(root)
    except CanonicalizationError as exc:
        raise VerificationError(str(exc)) from None

    digest = hashlib.sha256(content).digest()
    if not hmac.compare_digest(digest, parts.digest_value):
        raise VerificationError(
            "digest mismatch: the document's content is not what was signed (altered after signing)"
        )
    r = int.from_bytes(parts.signature_value[:32], "big")
    s = int.from_bytes(parts.signature_value[32:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), parts.signed_info, _ECDSA_SHA256)
    except InvalidSignature:
        raise VerificationError(
            "the signature value does not verify with the key of the certificate named in "
            f"KeyInfo (issuer {strict.shown(parts.issuer_name)}, "
            f"serial {_serial(parts.serial_number)}): "
            "signed with another key, or SignedInfo was altered"
        ) from None
    return VerifiedDocument(
        root=signed_tree(content), certificate=certificate, digest=digest, content=content
    )


def signed_tree(content: bytes) -> etree._Element:
    """The verified octets ``content`` parsed again, refusing processing instructions.

    Every value in the answer is exactly the text that was digested: canonical
    form has no comments, CDATA sections or character references left to cut
    a value short, and processing instructions, which it keeps, are refused.
    """
    try:
        root = parse_untrusted(content, max_bytes=len(content))
    except UnsafeXmlError as exc:  # pragma: no cover - canonical XML is well-formed
        raise VerificationError(f"the signed content cannot be read again: {exc}") from None
    if b"<?" not in content:  # canonical form writes every instruction as "<?"
        return root
    for instruction in root.iter(etree.ProcessingInstruction):
        parent = instruction.getparent()
        raise VerificationError(
            "the signed content holds a processing instruction inside "
            f"{strict.describe(root if parent is None else parent)}; DUIS documents have none"
        )
    return root


def _the_signature(root: etree._Element) -> etree._Element:
    """The single Signature, which must be the last child of the root element."""
    signatures = list(root.iter(profile.ds("Signature")))
    if not signatures:
        raise VerificationError("the document is not signed: it has no ds:Signature element")
    if len(signatures) > 1:
        lines = ", ".join(str(s.sourceline) for s in signatures)
        raise VerificationError(
            f"the document has {len(signatures)} ds:Signature elements (lines {lines}); "
            "exactly one is allowed (a second one suggests signature wrapping)"
        )
    signature = signatures[0]
    if signature.getparent() is not root:
        raise VerificationError(
            f"ds:Signature (line {signature.sourceline}) is not a child of the root element; "
            "DUIS puts it last in the Response"
        )
    following = signature.getnext()
    if following is not None:
        raise VerificationError(
            f"ds:Signature is not the last child of the root element: {strict.describe(following)} "
            f"follows it (line {following.sourceline})"
        )
    if signature.tail is not None and signature.tail.strip(strict.XML_WHITESPACE):
        raise VerificationError("text follows ds:Signature inside the root element")
    return signature


@dataclass(frozen=True, slots=True)
class _SignatureParts:
    """The values of a Signature that passed the profile's structure checks."""

    signed_info: bytes
    """The exclusive C14N of SignedInfo: the octets the signature value covers."""
    digest_value: bytes
    signature_value: bytes
    issuer_name: str
    serial_number: int

    @classmethod
    def read(cls, signature: etree._Element) -> _SignatureParts:
        signed_info, signature_value, key_info = strict.expect(
            signature, ("SignedInfo", "SignatureValue", "KeyInfo")
        )
        try:
            canonical = exclusive_canonical(signed_info)
        except CanonicalizationError as exc:
            raise VerificationError(str(exc)) from None
        digest = _digest_if_profile_template(canonical)
        if digest is None:
            # Not byte-for-byte what chfw and DCC write (another prefix, or a deviation):
            # walk the elements, to accept the former and say what is wrong with the latter.
            digest = _check_signed_info(signed_info)
        issuer_name, serial_number = _issuer_serial(key_info)
        return cls(
            signed_info=canonical,
            digest_value=digest,
            signature_value=strict.base64_value(
                signature_value, "SignatureValue", profile.SIGNATURE_VALUE_BYTES
            ),
            issuer_name=issuer_name,
            serial_number=serial_number,
        )


_TEMPLATE_LENGTH = (
    len(profile.CANONICAL_SIGNED_INFO_HEAD) + 44 + len(profile.SIGNED_INFO_TAIL)
)  # 44 = base64 of a SHA-256 digest


def _digest_if_profile_template(canonical: bytes) -> bytes | None:
    """The digest when SignedInfo's canonical form is exactly the profile's template.

    Canonical form is a faithful serialisation, so equality with the template
    proves every structural rule at once (algorithms, one Reference, URI="",
    one Transform) for the price of a byte comparison.
    """
    if (
        len(canonical) != _TEMPLATE_LENGTH
        or not canonical.startswith(profile.CANONICAL_SIGNED_INFO_HEAD)
        or not canonical.endswith(profile.SIGNED_INFO_TAIL)
    ):
        return None
    encoded = canonical[len(profile.CANONICAL_SIGNED_INFO_HEAD) : -len(profile.SIGNED_INFO_TAIL)]
    try:
        digest = binascii.a2b_base64(encoded, strict_mode=True)
    except binascii.Error:
        return None
    return digest if len(digest) == _DIGEST_BYTES else None


def _check_signed_info(signed_info: etree._Element) -> bytes:
    """Check SignedInfo element by element; return the digest or say what deviates."""
    methods = strict.children(signed_info)
    if len(methods) < 2:
        raise VerificationError(
            "ds:SignedInfo must hold CanonicalizationMethod, SignatureMethod and a Reference"
        )
    c14n_method, signature_method, *references = methods
    strict.expect_algorithm(c14n_method, "CanonicalizationMethod", profile.EXC_C14N)
    strict.expect_algorithm(signature_method, "SignatureMethod", profile.ECDSA_SHA256)
    if len(references) != 1 or references[0].tag != profile.ds("Reference"):
        raise VerificationError(
            f"ds:SignedInfo must hold exactly one ds:Reference after the methods; found "
            f"{', '.join(strict.describe(e) for e in references) or 'none'}"
        )
    reference = references[0]
    uri = reference.get("URI")
    if uri != "":
        shown = "no URI attribute" if uri is None else f"URI={strict.shown(uri)}"
        raise VerificationError(
            f'the Reference has {shown}; DCC\'s profile signs the whole document (URI="")'
        )
    transforms, digest_method, digest_value = strict.expect(
        reference, ("Transforms", "DigestMethod", "DigestValue")
    )
    transform_list = strict.children(transforms)
    if len(transform_list) != 1:
        raise VerificationError(
            f"the Reference has {len(transform_list)} Transforms; DCC's profile has exactly "
            "one, enveloped-signature"
        )
    strict.expect_algorithm(transform_list[0], "Transform", profile.ENVELOPED_SIGNATURE)
    strict.expect_algorithm(digest_method, "DigestMethod", profile.SHA256)
    return strict.base64_value(digest_value, "DigestValue", _DIGEST_BYTES)


def _issuer_serial(key_info: etree._Element) -> tuple[str, int]:
    (x509_data,) = strict.expect(key_info, ("X509Data",))
    entries = strict.children(x509_data)
    issuer_serials = [e for e in entries if e.tag == profile.ds("X509IssuerSerial")]
    unexpected = [e for e in entries if e.tag not in _X509_DATA_ALLOWED]
    if unexpected:
        raise VerificationError(f"unexpected {strict.describe(unexpected[0])} in ds:X509Data")
    if len(issuer_serials) != 1:
        raise VerificationError(
            f"ds:X509Data must name the signer by exactly one ds:X509IssuerSerial; found "
            f"{len(issuer_serials)}"
        )
    children = strict.children(issuer_serials[0])
    tags = [e.tag for e in children]
    if profile.ds("X509SerialNumber") not in tags:
        raise VerificationError(
            "ds:X509IssuerSerial has no ds:X509SerialNumber; the signer's certificate cannot be "
            "identified (DCC's tools refuse this too)"
        )
    issuer_element, serial_element = strict.expect(
        issuer_serials[0], ("X509IssuerName", "X509SerialNumber")
    )
    serial_text = (serial_element.text or "").strip(strict.XML_WHITESPACE)
    if not serial_text.isascii() or not serial_text.isdigit():
        raise VerificationError(
            f"ds:X509SerialNumber {strict.shown(serial_text)} is not a non-negative decimal integer"
        )
    if len(serial_text) > _SERIAL_DIGITS_MAX:
        raise VerificationError(
            f"ds:X509SerialNumber has {len(serial_text)} digits; a certificate's serial number "
            f"is at most 20 octets ({_SERIAL_DIGITS_MAX} decimal digits)"
        )
    return issuer_element.text or "", int(serial_text)


# X509Data may also carry informational entries, which we ignore: the signer is found by
# issuer + serial in the trust store, never from a certificate the document brings along.
_X509_DATA_ALLOWED = frozenset(
    profile.ds(name)
    for name in ("X509IssuerSerial", "X509Certificate", "X509SubjectName", "X509SKI")
)


def _trusted_certificate(trust: TrustStore, issuer_name: str, serial: int) -> x509.Certificate:
    try:
        certificate = trust.find(issuer_name, serial)
    except NameSyntaxError as exc:
        raise VerificationError(f"ds:X509IssuerName is not a distinguished name: {exc}") from None
    if certificate is None:
        raise VerificationError(
            f"unknown signer: no trusted certificate with issuer {strict.shown(issuer_name)} and "
            f"serial {_serial(serial)}; add the signer's certificate to the trust store if it "
            "should be trusted"
        )
    return certificate


def _check_validity(certificate: x509.Certificate, at: dt.datetime | None) -> None:
    when = utc_now() if at is None else at
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if when < certificate.not_valid_before_utc:
        raise VerificationError(
            f"the signer's certificate (serial {_serial(certificate.serial_number)}) is not "
            "valid before "
            f"{certificate.not_valid_before_utc.isoformat()}"
        )
    if when > certificate.not_valid_after_utc:
        raise VerificationError(
            f"the signer's certificate (serial {_serial(certificate.serial_number)}) expired on "
            f"{certificate.not_valid_after_utc.isoformat()}"
        )


def _load_certificates(blob: bytes, source: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(blob)
    except ValueError as exc:
        raise ConfigError(
            f"{source} is not PEM X.509 certificates ({exc}); expected "
            "'-----BEGIN CERTIFICATE-----' blocks"
        ) from None
    return certificates
