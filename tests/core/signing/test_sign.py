"""Signing: the direct fast path must produce exactly what lxml's canonicalisation would."""

from __future__ import annotations

import hashlib
from base64 import b64decode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from chfw.core.signing import (
    PemSigner,
    TrustStore,
    canonical_signed_info,
    sign_canonical,
    sign_document,
    verify_document,
)
from chfw.core.signing.canon import canonical_document, exclusive_canonical
from chfw.core.signing.profile import DSIG_NS, ds
from chfw.exceptions import SigningError
from tests.core.signing.builders import (
    N64_DOCUMENT,
    RecordingSigner,
    certificate,
    p256_key,
    response_documents,
)


def _signature_of(signed: bytes) -> tuple[etree._Element, etree._Element]:
    root = etree.fromstring(signed)
    signature = root.find(ds("Signature"))
    assert signature is not None
    return root, signature


class TestFastPathMatchesLxml:
    """sign_canonical writes the bytes lxml's C14N would, for any canonical Response."""

    @settings(max_examples=150)
    @given(document=response_documents())
    def test_signed_info_is_its_exclusive_canonical_form(
        self, document: bytes, signer: PemSigner
    ) -> None:
        recorder = RecordingSigner(signer)
        signed = sign_canonical(document, recorder)
        _, signature = _signature_of(signed)
        signed_info = signature.find(ds("SignedInfo"))
        assert signed_info is not None
        assert recorder.signed == [exclusive_canonical(signed_info)]

    @settings(max_examples=150)
    @given(document=response_documents())
    def test_removing_the_signature_gives_back_the_input(
        self, document: bytes, signer: PemSigner
    ) -> None:
        root, signature = _signature_of(sign_canonical(document, signer))
        assert root[-1] is signature
        root.remove(signature)
        assert canonical_document(root) == document

    @settings(max_examples=100)
    @given(document=response_documents())
    def test_digest_value_is_sha256_of_the_canonical_input(
        self, document: bytes, signer: PemSigner
    ) -> None:
        _, signature = _signature_of(sign_canonical(document, signer))
        digest_value = signature.findtext(
            f"{ds('SignedInfo')}/{ds('Reference')}/{ds('DigestValue')}"
        )
        assert digest_value is not None
        assert b64decode(digest_value) == hashlib.sha256(document).digest()

    @settings(max_examples=100)
    @given(document=response_documents())
    def test_signed_document_is_itself_canonical(self, document: bytes, signer: PemSigner) -> None:
        root = etree.fromstring(document)
        if root.nsmap.get("ds") == DSIG_NS:
            # lxml would not repeat an inherited declaration; the fast path always writes one.
            return
        signed = sign_canonical(document, signer)
        assert etree.tostring(etree.fromstring(signed), method="c14n") == signed

    @settings(max_examples=60)
    @given(document=response_documents())
    def test_round_trips_through_the_verifier(
        self, document: bytes, signer: PemSigner, trust: TrustStore
    ) -> None:
        verified = verify_document(sign_canonical(document, signer), trust)
        assert verified.content == document


class TestSignatureShape:
    """The Signature is DCC's profile: algorithms, one Reference, raw r‖s, X509IssuerSerial."""

    def test_profile_elements_and_algorithms(self, signer: PemSigner) -> None:
        _, signature = _signature_of(sign_canonical(N64_DOCUMENT, signer))
        algorithms = [
            (etree.QName(e).localname, e.get("Algorithm"))
            for e in signature.iter()
            if e.get("Algorithm") is not None
        ]
        assert algorithms == [
            ("CanonicalizationMethod", "http://www.w3.org/2001/10/xml-exc-c14n#"),
            ("SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"),
            ("Transform", "http://www.w3.org/2000/09/xmldsig#enveloped-signature"),
            ("DigestMethod", "http://www.w3.org/2001/04/xmlenc#sha256"),
        ]
        references = signature.findall(f"{ds('SignedInfo')}/{ds('Reference')}")
        assert [r.get("URI") for r in references] == [""]

    def test_signature_value_is_raw_r_s_over_the_signed_info(self, signer: PemSigner) -> None:
        _, signature = _signature_of(sign_canonical(N64_DOCUMENT, signer))
        raw = b64decode(signature.findtext(ds("SignatureValue")) or "")
        assert len(raw) == 64
        signed_info = signature.find(ds("SignedInfo"))
        assert signed_info is not None
        public_key = signer.certificate.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
        public_key.verify(der, exclusive_canonical(signed_info), ec.ECDSA(hashes.SHA256()))

    def test_key_info_names_the_certificate_by_issuer_and_decimal_serial(
        self, signer: PemSigner
    ) -> None:
        _, signature = _signature_of(sign_canonical(N64_DOCUMENT, signer))
        path = f"{ds('KeyInfo')}/{ds('X509Data')}/{ds('X509IssuerSerial')}"
        assert signature.findtext(f"{path}/{ds('X509IssuerName')}") == "CN=chfw test signer"
        serial = signature.findtext(f"{path}/{ds('X509SerialNumber')}")
        assert serial == str(signer.certificate.serial_number)

    @given(organisation=st.text(st.sampled_from("A&B<C>D\"é' "), min_size=1, max_size=12))
    def test_issuer_names_needing_escapes_survive(self, organisation: str) -> None:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        key = p256_key()
        cert = certificate(
            key,
            issuer=x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Z1"),
                ]
            ),
        )
        signer = PemSigner(key, cert)
        signed = sign_canonical(N64_DOCUMENT, signer)
        _, signature = _signature_of(signed)
        issuer = signature.findtext(f".//{ds('X509IssuerName')}")
        assert issuer == cert.issuer.rfc4514_string()
        assert verify_document(signed, TrustStore([cert])).certificate == cert

    def test_canonical_signed_info_is_what_sign_canonical_signs(self, signer: PemSigner) -> None:
        recorder = RecordingSigner(signer)
        sign_canonical(N64_DOCUMENT, recorder)
        assert recorder.signed == [canonical_signed_info(hashlib.sha256(N64_DOCUMENT).digest())]


class TestSignCanonicalRefuses:
    """The fast path refuses what it cannot sign correctly instead of emitting a bad signature."""

    @pytest.mark.parametrize(
        "document",
        [
            b"",
            b"not xml",
            b'<?xml version="1.0"?><a></a>',
            b"<a></a> ",
            b"<!-- c --><a></a>",
            b"<a><b></b></a><c></c>",
            b"<ab></a>",
        ],
    )
    def test_not_canonical(self, document: bytes, signer: PemSigner) -> None:
        with pytest.raises(SigningError, match="sign_document"):
            sign_canonical(document, signer)

    def test_already_signed(self, signer: PemSigner) -> None:
        signed = sign_canonical(N64_DOCUMENT, signer)
        with pytest.raises(SigningError, match="already ends with a ds:Signature"):
            sign_canonical(signed, signer)

    def test_signer_returning_der(self, signer: PemSigner) -> None:
        class DerSigner(RecordingSigner):
            def sign(self, data: bytes) -> bytes:
                key = p256_key()
                return key.sign(data, ec.ECDSA(hashes.SHA256()))

        with pytest.raises(SigningError, match="raw r‖s"):
            sign_canonical(N64_DOCUMENT, DerSigner(signer))


class TestSignDocument:
    """sign_document makes arbitrary unsigned input compact and canonical, then signs it."""

    def test_pretty_printed_input_is_signed_compact(
        self, signer: PemSigner, trust: TrustStore
    ) -> None:
        pretty = b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- leading -->\n' + etree.tostring(
            etree.fromstring(N64_DOCUMENT), pretty_print=True
        )
        signed = sign_document(pretty, signer)
        assert signed.startswith(b"<sr:Response")
        assert verify_document(signed, trust).content == N64_DOCUMENT

    def test_same_signed_content_as_the_fast_path(self, signer: PemSigner) -> None:
        recorder = RecordingSigner(signer)
        sign_document(N64_DOCUMENT.replace(b"><sr:Body>", b">\n  <sr:Body>"), recorder)
        sign_canonical(N64_DOCUMENT, recorder)
        assert recorder.signed[0] == recorder.signed[1]

    def test_non_canonical_attributes_and_empty_elements(
        self, signer: PemSigner, trust: TrustStore
    ) -> None:
        document = b"<r xmlns='urn:r' b=\"2\" a='1'><e/><t>a&#x3E;b</t></r>"
        verified = verify_document(sign_document(document, signer), trust)
        assert verified.content == b'<r xmlns="urn:r" a="1" b="2"><e></e><t>a&gt;b</t></r>'

    @pytest.mark.parametrize(
        ("document", "reason"),
        [
            (b"<a>", "not well-formed"),
            (b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "DOCTYPE|not well-formed"),
            (b'<a xmlns="relative"><b></b></a>', "relative namespace"),
        ],
    )
    def test_refuses_bad_input(self, document: bytes, reason: str, signer: PemSigner) -> None:
        with pytest.raises(SigningError, match=reason):
            sign_document(document, signer)

    def test_refuses_a_signed_document(self, signer: PemSigner) -> None:
        signed = sign_canonical(N64_DOCUMENT, signer)
        with pytest.raises(SigningError, match="already has a ds:Signature"):
            sign_document(signed, signer)
