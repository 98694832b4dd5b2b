"""Enveloped XML-Signature in DCC's profile, written directly as canonical bytes.

chfw's own alerts leave ``chfw.core.duis`` already in inclusive-C14N form (compact, no
XML declaration, no Signature), so the digested octets are the document bytes
themselves and the exclusive-C14N SignedInfo is a fixed template around one
digest. :func:`sign_canonical` therefore builds no tree: one SHA-256, one
ECDSA signature, a few concatenations. :func:`sign_document` takes any
document, canonicalises it with lxml, then does the same.

The Signature is written in canonical form too (start/end tag pairs, its own
``xmlns:ds``), so a signed chfw document is itself canonical.
"""

from __future__ import annotations

import hashlib
from binascii import b2a_base64
from functools import lru_cache

from lxml import etree

from chfw.core.signing import profile
from chfw.core.signing.canon import (
    CanonicalizationError,
    canonical_root,
    drop_inter_element_whitespace,
)
from chfw.core.signing.signer import Signer
from chfw.core.xmlsafe import UnsafeXmlError, parse_untrusted
from chfw.exceptions import SigningError

# In the document, SignedInfo inherits ds from the Signature element.
_SIGNATURE_HEAD = (
    b"<ds:Signature" + profile.DS_XMLNS + b"><ds:SignedInfo>" + profile.SIGNED_INFO_BODY_HEAD
)
_CANONICAL_SIGNED_INFO_HEAD = profile.CANONICAL_SIGNED_INFO_HEAD
_SIGNED_INFO_BODY_TAIL = profile.SIGNED_INFO_TAIL


def canonical_signed_info(digest: bytes) -> bytes:
    """The exact octets that are signed: exc-c14n of SignedInfo for this SHA-256 ``digest``."""
    return _CANONICAL_SIGNED_INFO_HEAD + b2a_base64(digest, newline=False) + _SIGNED_INFO_BODY_TAIL


def sign_canonical(document: bytes, signer: Signer) -> bytes:
    """Sign a document that is already inclusive-C14N (as ``chfw.core.duis`` renders it).

    The Signature becomes the last child of the root element. Only O(1)
    checks are made on ``document`` (no parsing, no scan): the last end tag
    must close the root, and must not follow a Signature (signing twice).
    Give anything else to :func:`sign_document`, which checks everything.
    """
    split = _root_end_tag_start(document)
    if document.endswith(b"Signature>", 0, split):
        raise SigningError(
            "the document already ends with a ds:Signature; chfw signs unsigned documents "
            "only — remove it first"
        )
    return _sign(document, split, signer)


def sign_document(xml: bytes, signer: Signer) -> bytes:
    """Sign any unsigned document: parse it safely, make it compact and canonical, sign.

    Whitespace-only text between elements is dropped (DCC's validator would
    drop it before checking the digest anyway); comments, the XML declaration
    and anything outside the root element are not kept.
    """
    try:
        root = parse_untrusted(xml)
    except UnsafeXmlError as exc:
        raise SigningError(f"cannot sign: {exc}") from None
    _refuse_signature_element(root)
    drop_inter_element_whitespace(root)
    try:
        canonical = canonical_root(root)
    except CanonicalizationError as exc:
        raise SigningError(f"cannot sign: {exc}") from None
    return _sign(canonical, _root_end_tag_start(canonical), signer)


def _sign(document: bytes, split: int, signer: Signer) -> bytes:
    digest_b64 = b2a_base64(hashlib.sha256(document).digest(), newline=False)
    signature = signer.sign(_CANONICAL_SIGNED_INFO_HEAD + digest_b64 + _SIGNED_INFO_BODY_TAIL)
    if len(signature) != profile.SIGNATURE_VALUE_BYTES:
        raise SigningError(
            f"the signer returned {len(signature)} bytes; XML-DSig ECDSA P-256 needs raw r‖s "
            f"of {profile.SIGNATURE_VALUE_BYTES} bytes (not DER) — check the Signer implementation"
        )
    return b"".join(
        (
            document[:split],
            _SIGNATURE_HEAD,
            digest_b64,
            _SIGNED_INFO_BODY_TAIL_AND_VALUE_START,
            b2a_base64(signature, newline=False),
            _signature_end(signer.issuer_name, signer.serial_number),
            document[split:],
        )
    )


_SIGNED_INFO_BODY_TAIL_AND_VALUE_START = _SIGNED_INFO_BODY_TAIL + b"<ds:SignatureValue>"


@lru_cache(maxsize=64)
def _signature_end(issuer_name: str, serial_number: int) -> bytes:
    """From the end of SignatureValue to the end of Signature: KeyInfo/X509IssuerSerial.

    Cached per certificate: a process has one or two signers.
    """
    if serial_number < 0:
        raise SigningError(f"certificate serial number {serial_number} is negative")
    if not issuer_name or any(_not_xml_char(c) for c in issuer_name):
        raise SigningError(
            f"certificate issuer {issuer_name!r} cannot be written as XML text "
            "(empty or containing control characters)"
        )
    return (
        b"</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>"
        + _escape_text(issuer_name).encode()
        + b"</ds:X509IssuerName><ds:X509SerialNumber>"
        + str(serial_number).encode()
        + b"</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo>"
        + b"</ds:Signature>"
    )


def _escape_text(text: str) -> str:
    """Text escaping exactly as Canonical XML writes character data."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")
    )


def _not_xml_char(char: str) -> bool:
    code = ord(char)
    if code < 0x20:
        return char not in "\t\n\r"
    return 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF)


def _root_end_tag_start(document: bytes) -> int:
    """Where the root's end tag starts, checking the bytes look like a canonical document.

    The last end tag must close the element the document starts with; that
    also rules out an XML declaration, a leading comment and trailing text.
    """
    start = document.rfind(b"</")
    name = document[start + 2 : -1]
    if (
        start > 0
        and name
        and document.endswith(b">")
        and document.startswith(name, 1)
        and document[len(name) + 1] in _AFTER_ROOT_NAME
    ):
        return start
    raise SigningError(
        "sign_canonical needs a compact canonical document (use sign_document); this one does "
        "not start with the root's start tag and end with its end tag: "
        f"{document[:40]!r}…{document[-40:]!r}"
    )


_AFTER_ROOT_NAME = frozenset(b" >")


def _refuse_signature_element(root: etree._Element) -> None:
    existing = next(root.iter(profile.ds("Signature")), None)
    if existing is not None:
        raise SigningError(
            f"the document already has a ds:Signature (line {existing.sourceline}); "
            "chfw signs unsigned documents only — remove it first"
        )


# --- re-signing: the same document, signed by another identity ---------------------------------

_SIGNATURE_START = b"<ds:Signature" + profile.DS_XMLNS + b">"
_SIGNATURE_END = b"</ds:Signature>"


class Resigner:
    """Keeps stored signed documents current with one signing identity.

    :meth:`is_current` tells, without parsing, whether a document chfw signed
    names this signer's certificate in its KeyInfo (X509IssuerSerial): the
    document must end with exactly the KeyInfo this signer writes, then the
    root's end tag -- one ``rfind`` of the last ``</`` and one ``endswith``.
    :meth:`resign` strips the enveloped Signature chfw appended and signs the
    same canonical bytes again, so the signed content (ResponseID included) is
    byte for byte what was signed before: the same alert, a new signature.
    """

    __slots__ = ("_tail", "signer")

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self._tail = _signature_end(signer.issuer_name, signer.serial_number)

    def is_current(self, document: bytes) -> bool:
        """Whether ``document``'s KeyInfo names this signer's certificate (issuer and serial)."""
        return document.endswith(self._tail, 0, document.rfind(b"</"))

    @staticmethod
    def is_signed(document: bytes) -> bool:
        """Whether ``document`` ends with a Signature as the root's last child (not checked)."""
        return document.endswith(_SIGNATURE_END, 0, document.rfind(b"</"))

    def current(self, document: bytes) -> bytes | None:
        """``document`` re-signed by this signer, or None when it already is (no work done)."""
        if self.is_current(document):
            return None
        return self.resign(document)

    def resign(self, document: bytes) -> bytes:
        """Strip chfw's enveloped Signature from a signed canonical document and sign again."""
        return sign_canonical(unsigned(document), self.signer)


def unsigned(document: bytes) -> bytes:
    """A document chfw signed (:func:`sign_canonical`) without its Signature: the signed octets.

    The Signature chfw writes is the root's last child and starts with its own
    ``xmlns:ds``; what precedes it and the root's end tag are the canonical
    document that was digested. Anything else is refused (SigningError).
    """
    split = _root_end_tag_start(document)
    start = document.rfind(_SIGNATURE_START, 0, split)
    if start < 0 or not document.endswith(_SIGNATURE_END, 0, split):
        raise SigningError(
            "cannot re-sign: the document does not end with a ds:Signature as chfw writes "
            f"it: …{document[-80:]!r}"
        )
    return document[:start] + document[split:]
