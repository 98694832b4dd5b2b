"""XML-Signature for DUIS documents in DCC's profile: sign with a key, verify with a trust store.

Pure: keys and bytes in, bytes and values out. See docs/domain.md, "Signing" for the profile.
"""

from __future__ import annotations

from chfw.core.signing.sign import (
    Resigner,
    canonical_signed_info,
    sign_canonical,
    sign_document,
    unsigned,
)
from chfw.core.signing.signer import PemSigner, Signer, create_development_identity
from chfw.core.signing.verify import TrustStore, VerifiedDocument, serial_hex, verify_document

__all__ = [
    "PemSigner",
    "Resigner",
    "Signer",
    "TrustStore",
    "VerifiedDocument",
    "canonical_signed_info",
    "create_development_identity",
    "serial_hex",
    "sign_canonical",
    "sign_document",
    "unsigned",
    "verify_document",
]
