"""Interop: signxml accepts what we sign, we accept DCC's own signed Response."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from lxml import etree
from signxml import (
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
    methods,
)
from signxml.algorithms import CanonicalizationMethod
from signxml.exceptions import InvalidDigest

from chfw.core.signing import PemSigner, TrustStore, sign_canonical, verify_document
from chfw.core.signing.profile import DSIG_NS, EXC_C14N, ds
from chfw.exceptions import VerificationError
from tests.core.signing.builders import N64_DOCUMENT, response_documents

DCC_PROFILE = SignatureConfiguration(
    signature_methods=frozenset({SignatureMethod.ECDSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
    # The Reference has only the enveloped transform: XML-DSig's default is C14N 1.0.
    default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
)


def signxml_sign(document: bytes, signer: PemSigner, key_pem: bytes) -> bytes:
    """The same profile produced by signxml (how the benchmark's comparison signs)."""
    key_info = etree.Element(ds("KeyInfo"), nsmap={"ds": DSIG_NS})
    issuer_serial = etree.SubElement(
        etree.SubElement(key_info, ds("X509Data")), ds("X509IssuerSerial")
    )
    etree.SubElement(issuer_serial, ds("X509IssuerName")).text = signer.issuer_name
    etree.SubElement(issuer_serial, ds("X509SerialNumber")).text = str(signer.serial_number)
    xml_signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm="ecdsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=EXC_C14N,
    )
    signed = xml_signer.sign(
        etree.fromstring(document),
        key=serialization.load_pem_private_key(key_pem, None),
        key_info=key_info,
        exclude_c14n_transform_element=True,
    )
    return etree.tostring(signed)


class TestSignxmlAcceptsOurs:
    """signxml, given our certificate, verifies chfw-signed documents and sees the same content."""

    @settings(max_examples=40)
    @given(document=response_documents())
    def test_verifies(self, document: bytes, signer: PemSigner) -> None:
        signed = sign_canonical(document, signer)
        result = XMLVerifier().verify(
            signed, x509_cert=signer.certificate, expect_config=DCC_PROFILE
        )
        assert result.signed_data == document

    def test_signxml_rejects_tampering_too(self, signer: PemSigner) -> None:
        signed = sign_canonical(N64_DOCUMENT, signer).replace(b"02010300", b"02010301")
        with pytest.raises(InvalidDigest):
            XMLVerifier().verify(signed, x509_cert=signer.certificate, expect_config=DCC_PROFILE)


class TestWeAcceptSignxml:
    """The signxml-produced equivalent (the benchmark's comparison) verifies with chfw."""

    def test_equivalent_signature_verifies(
        self, signer: PemSigner, identity: tuple[bytes, bytes], trust: TrustStore
    ) -> None:
        signed = signxml_sign(N64_DOCUMENT, signer, identity[0])
        assert verify_document(signed, trust).content == N64_DOCUMENT


@pytest.mark.reference
class TestDccSignedSample:
    """DCC Boxed's DSP-signed Response verifies with its certificate and no other."""

    @pytest.fixture
    def samples(self, dcc_reference: Path) -> Path:
        return dcc_reference / "duis-samples"

    @pytest.fixture
    def document(self, samples: Path) -> bytes:
        return (samples / "dccboxed-readfw-response-signed.xml").read_bytes()

    def test_verifies_with_the_dsp_certificate(self, samples: Path, document: bytes) -> None:
        trust = TrustStore.from_files(samples / "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem")
        signed_at = dt.datetime(2022, 8, 17, 15, 45, 42, tzinfo=dt.UTC)
        verified = verify_document(document, trust, at=signed_at)
        assert verified.certificate.serial_number == 50669612984035780968362471400449834504
        assert (
            verified.root.findtext(
                "{http://www.dccinterface.co.uk/ServiceUserGateway}Body//"
                "{http://www.dccinterface.co.uk/ServiceUserGateway}ServiceReference"
            )
            == "11.2"
        )
        # The input is not canonical (XML declaration, unused namespace declarations kept).
        assert not document.startswith(verified.content[:20])
        assert verified.content.startswith(b"<sr:Response xmlns:ns3=")

    def test_other_dsp_certificate_is_not_the_signer(self, samples: Path, document: bytes) -> None:
        trust = TrustStore.from_files(samples / "dsp-xml-sign-90B3D51F30000002-ds.pem")
        with pytest.raises(VerificationError, match="unknown signer"):
            verify_document(document, trust, at=dt.datetime(2022, 8, 17, tzinfo=dt.UTC))

    def test_other_certificate_key_does_not_verify_it(self, samples: Path, document: bytes) -> None:
        """Even filed under the signer's issuer and serial, another key fails the signature."""
        real = x509.load_pem_x509_certificate(
            (samples / "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem").read_bytes()
        )
        other = x509.load_pem_x509_certificate(
            (samples / "dsp-xml-sign-90B3D51F30000002-ds.pem").read_bytes()
        )
        assert isinstance(other.public_key(), ec.EllipticCurvePublicKey)
        forged = document.replace(
            str(real.serial_number).encode(), str(other.serial_number).encode()
        )
        with pytest.raises(VerificationError, match="does not verify"):
            verify_document(forged, TrustStore([other]), at=dt.datetime(2022, 8, 17, tzinfo=dt.UTC))

    def test_tampered_sample_fails(self, samples: Path, document: bytes) -> None:
        trust = TrustStore.from_files(samples / "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem")
        tampered = document.replace(b"<sr:ResponseCode>I0<", b"<sr:ResponseCode>E1<")
        assert tampered != document
        with pytest.raises(VerificationError, match="digest mismatch"):
            verify_document(tampered, trust, at=dt.datetime(2022, 8, 17, tzinfo=dt.UTC))
