"""Re-signing (issue 20): a stored alert signed by an old identity, signed again by the new one."""

from __future__ import annotations

import pytest

from chfw.core.signing import (
    PemSigner,
    Resigner,
    TrustStore,
    create_development_identity,
    sign_canonical,
    unsigned,
    verify_document,
)
from chfw.exceptions import SigningError
from tests.core.signing.builders import N64_DOCUMENT, RecordingSigner


def identity(common_name: str) -> tuple[PemSigner, TrustStore]:
    key_pem, cert_pem = create_development_identity(common_name)
    return PemSigner.from_pem(key_pem, cert_pem), TrustStore.from_pem(cert_pem)


OLD, OLD_TRUST = identity("old DSP signer")
NEW, NEW_TRUST = identity("new DSP signer")
SAME_ISSUER, _ = identity("old DSP signer")  # same issuer name, another serial


class TestIsCurrent:
    def test_own_signature_is_current(self) -> None:
        assert Resigner(OLD).is_current(sign_canonical(N64_DOCUMENT, OLD))

    def test_another_identity_is_not(self) -> None:
        signed = sign_canonical(N64_DOCUMENT, OLD)
        assert not Resigner(NEW).is_current(signed)
        assert not Resigner(SAME_ISSUER).is_current(signed)  # the serial differs

    def test_unsigned_is_not_signed(self) -> None:
        assert not Resigner.is_signed(N64_DOCUMENT)
        assert not Resigner(OLD).is_current(N64_DOCUMENT)
        assert Resigner.is_signed(sign_canonical(N64_DOCUMENT, OLD))


class TestResign:
    def test_same_content_new_signature(self) -> None:
        old = sign_canonical(N64_DOCUMENT, OLD)
        new = Resigner(NEW).resign(old)
        assert verify_document(new, NEW_TRUST).content == N64_DOCUMENT
        assert verify_document(old, OLD_TRUST).content == N64_DOCUMENT
        assert Resigner(NEW).is_current(new)
        # Exactly what signing the original would give, bar ECDSA's random nonce.
        assert len(new) == len(sign_canonical(N64_DOCUMENT, NEW))
        assert unsigned(new) == unsigned(old) == N64_DOCUMENT

    def test_current_does_no_work_when_already_current(self) -> None:
        recording = RecordingSigner(NEW)
        resigner = Resigner(recording)
        mine = sign_canonical(N64_DOCUMENT, NEW)
        assert resigner.current(mine) is None
        assert recording.signed == []
        fresh = resigner.current(sign_canonical(N64_DOCUMENT, OLD))
        assert fresh is not None
        assert len(recording.signed) == 1
        verify_document(fresh, NEW_TRUST)

    @pytest.mark.parametrize(
        "document",
        [
            N64_DOCUMENT,  # never signed
            b'<?xml version="1.0"?>' + N64_DOCUMENT,  # not canonical
            N64_DOCUMENT.replace(b"</sr:Response>", b"<ds:Signature></ds:Signature></sr:Response>"),
        ],
    )
    def test_refuses_what_chfw_did_not_sign(self, document: bytes) -> None:
        with pytest.raises(SigningError):
            Resigner(NEW).resign(document)
