"""The one XML-Signature profile DCC uses for DUIS (docs/domain.md, "Signing"), as constants.

Signing writes exactly this; verification accepts exactly this and nothing else.
"""

from __future__ import annotations

from typing import Final

DSIG_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
ECDSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ENVELOPED_SIGNATURE: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"

SIGNATURE_VALUE_BYTES: Final = 64
"""Raw r‖s for P-256, as XML-DSig requires for ECDSA (not DER)."""

DS_XMLNS: Final = b' xmlns:ds="' + DSIG_NS.encode() + b'"'

SIGNED_INFO_BODY_HEAD: Final = (
    b'<ds:CanonicalizationMethod Algorithm="'
    + EXC_C14N.encode()
    + b'"></ds:CanonicalizationMethod>'
    + b'<ds:SignatureMethod Algorithm="'
    + ECDSA_SHA256.encode()
    + b'"></ds:SignatureMethod>'
    + b'<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="'
    + ENVELOPED_SIGNATURE.encode()
    + b'"></ds:Transform></ds:Transforms>'
    + b'<ds:DigestMethod Algorithm="'
    + SHA256.encode()
    + b'"></ds:DigestMethod><ds:DigestValue>'
)
"""SignedInfo's content up to the DigestValue text, in canonical form."""

SIGNED_INFO_TAIL: Final = b"</ds:DigestValue></ds:Reference></ds:SignedInfo>"

CANONICAL_SIGNED_INFO_HEAD: Final = b"<ds:SignedInfo" + DS_XMLNS + b">" + SIGNED_INFO_BODY_HEAD
"""Exclusive C14N of SignedInfo up to the digest: it renders the ds prefix on SignedInfo itself.

``CANONICAL_SIGNED_INFO_HEAD + base64(digest) + SIGNED_INFO_TAIL`` is exactly
what is signed, for every document.
"""


def ds(local_name: str) -> str:
    """The Clark-notation tag of an XML-DSig element, e.g. ``{...xmldsig#}Signature``."""
    return f"{{{DSIG_NS}}}{local_name}"
