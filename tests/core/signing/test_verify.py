"""Verification: DCC's profile only, signers from the trust store, every deviation refused."""

from __future__ import annotations

import copy
import datetime as dt
from base64 import b64encode
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from chfw.core.signing import (
    PemSigner,
    TrustStore,
    VerifiedDocument,
    create_development_identity,
    sign_canonical,
    verify_document,
)
from chfw.core.signing.profile import DSIG_NS, ds
from chfw.exceptions import ConfigError, VerificationError, XmlSignatureError
from tests.core.signing.builders import (
    N64_DOCUMENT,
    SR_NS,
    ImpostorSigner,
    certificate,
    ds_element,
    edit_signed,
    key_pem,
    p256_key,
    pem,
)


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return p256_key()


@pytest.fixture(scope="module")
def cert(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return certificate(key, serial=4242)


@pytest.fixture(scope="module")
def signed(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bytes:
    return sign_canonical(N64_DOCUMENT, PemSigner(key, cert))


@pytest.fixture(scope="module")
def store(cert: x509.Certificate) -> TrustStore:
    return TrustStore([cert])


def _reason(data: bytes, trust: TrustStore, **kwargs: dt.datetime) -> str:
    with pytest.raises(VerificationError) as caught:
        verify_document(data, trust, **kwargs)
    assert isinstance(caught.value, XmlSignatureError)
    return caught.value.reason


class TestAccepts:
    """A document signed in the profile by a trusted certificate verifies."""

    def test_round_trip(self, signed: bytes, store: TrustStore, cert: x509.Certificate) -> None:
        verified = verify_document(signed, store)
        assert isinstance(verified, VerifiedDocument)
        assert verified.content == N64_DOCUMENT
        assert verified.certificate == cert
        assert verified.root.find(ds("Signature")) is None
        assert verified.root.findtext(f".//{{{SR_NS}}}FirmwareVersion") == "02010300"

    def test_result_is_frozen(self, signed: bytes, store: TrustStore) -> None:
        verified = verify_document(signed, store)
        with pytest.raises(AttributeError):
            verified.content = b"other"  # type: ignore[misc]

    def test_whitespace_between_elements_is_ignored_like_dcc(
        self, signed: bytes, store: TrustStore
    ) -> None:
        pretty = etree.tostring(etree.fromstring(signed), pretty_print=True)
        assert pretty != signed
        assert verify_document(pretty, store).content == N64_DOCUMENT

    def test_xml_declaration_and_comments_do_not_matter(
        self, signed: bytes, store: TrustStore
    ) -> None:
        decorated = b'<?xml version="1.0" encoding="UTF-8"?>\n' + signed.replace(
            b"<sr:Body>", b"<!-- a comment --><sr:Body>"
        )
        assert verify_document(decorated, store).content == N64_DOCUMENT

    def test_signer_found_among_several(self, signed: bytes, cert: x509.Certificate) -> None:
        others = [certificate(p256_key(), serial=n) for n in (1, 2, 3)]
        assert verify_document(signed, TrustStore([*others, cert])).certificate == cert

    def test_other_prefix_for_the_signature(
        self, signed: bytes, store: TrustStore, key: ec.EllipticCurvePrivateKey
    ) -> None:
        body, signature = signed.split(b"<ds:Signature", 1)
        renamed = (
            body
            + b"<dsig:Signature"
            + signature.replace(b"ds:", b"dsig:").replace(b"xmlns:ds=", b"xmlns:dsig=")
        )
        resigned = edit_signed(renamed, lambda root, sig: None, resign_with=key)
        assert b"<dsig:SignedInfo>" in resigned
        assert verify_document(resigned, store).content == N64_DOCUMENT

    def test_digest_value_with_a_line_break(
        self, signed: bytes, store: TrustStore, key: ec.EllipticCurvePrivateKey
    ) -> None:
        def wrap(_: etree._Element, signature: etree._Element) -> None:
            value = signature.find(f".//{ds('DigestValue')}")
            assert value is not None
            assert value.text is not None
            value.text = value.text[:20] + "\n" + value.text[20:]

        resigned = edit_signed(signed, wrap, resign_with=key)
        assert verify_document(resigned, store).content == N64_DOCUMENT


class TestRejectsContent:
    """Altered, unsigned or unsafe documents are refused with a reason."""

    def test_altered_text(self, signed: bytes, store: TrustStore) -> None:
        tampered = signed.replace(b">02010300<", b">02010301<")
        assert "digest mismatch" in _reason(tampered, store)

    def test_whitespace_inside_a_value_is_content(self, signed: bytes, store: TrustStore) -> None:
        tampered = signed.replace(b">02010300<", b"> 02010300<")
        assert "digest mismatch" in _reason(tampered, store)

    def test_added_attribute(self, signed: bytes, store: TrustStore) -> None:
        tampered = signed.replace(b'schemaVersion="5.1"', b'schemaVersion="5.1" extra="1"')
        assert "digest mismatch" in _reason(tampered, store)

    def test_unsigned(self, store: TrustStore) -> None:
        assert "not signed" in _reason(N64_DOCUMENT, store)

    def test_doctype_and_entities(self, signed: bytes, store: TrustStore) -> None:
        with_entity = b'<!DOCTYPE r [<!ENTITY v "02010300">]>' + signed.replace(
            b">02010300<", b">&v;<"
        )
        assert "DOCTYPE" in _reason(with_entity, store)

    @pytest.mark.parametrize("data", [b"", b"<sr:Response", b"\xff\xfe<a/>"])
    def test_not_well_formed(self, data: bytes, store: TrustStore) -> None:
        assert "unreadable document" in _reason(data, store)


class TestRejectsSigner:
    """Only certificates in the trust store, valid now, with the key that signed."""

    def test_wrong_key(self, cert: x509.Certificate, store: TrustStore) -> None:
        forged = sign_canonical(N64_DOCUMENT, ImpostorSigner(named=cert, key=p256_key()))
        assert "does not verify" in _reason(forged, store)

    def test_untrusted_certificate(self, signed: bytes) -> None:
        _, cert_pem = create_development_identity("someone else")
        reason = _reason(signed, TrustStore.from_pem(cert_pem))
        assert "unknown signer" in reason
        assert "4242" in reason

    def test_same_issuer_other_serial(self, signed: bytes) -> None:
        other = certificate(p256_key(), serial=4243)
        assert "unknown signer" in _reason(signed, TrustStore([other]))

    def test_expired_certificate(self, store: TrustStore) -> None:
        key = p256_key()
        old = certificate(
            key,
            serial=7,
            not_before=dt.datetime(2001, 1, 1, tzinfo=dt.UTC),
            not_after=dt.datetime(2002, 1, 1, tzinfo=dt.UTC),
        )
        signed = sign_canonical(N64_DOCUMENT, PemSigner(key, old))
        trust = TrustStore([old])
        assert "expired" in _reason(signed, trust)
        inside = dt.datetime(2001, 6, 1, tzinfo=dt.UTC)
        assert verify_document(signed, trust, at=inside).certificate == old
        assert "not valid before" in _reason(signed, trust, at=dt.datetime(2000, 1, 1))

    def test_non_p256_certificate(self) -> None:
        key = ec.generate_private_key(ec.SECP384R1())
        cert = certificate(key, serial=9)  # type: ignore[arg-type]
        forged = sign_canonical(N64_DOCUMENT, ImpostorSigner(named=cert, key=p256_key()))
        assert "P-256" in _reason(forged, TrustStore([cert]))

    def test_missing_serial_number(self, signed: bytes, store: TrustStore) -> None:
        def drop_serial(_: etree._Element, signature: etree._Element) -> None:
            serial = signature.find(f".//{ds('X509SerialNumber')}")
            assert serial is not None
            serial.getparent().remove(serial)  # type: ignore[union-attr]

        assert "X509SerialNumber" in _reason(edit_signed(signed, drop_serial), store)

    def test_non_numeric_serial(self, signed: bytes, store: TrustStore) -> None:
        def hex_serial(_: etree._Element, signature: etree._Element) -> None:
            signature.find(f".//{ds('X509SerialNumber')}").text = "0x1092"  # type: ignore[union-attr]

        assert "decimal" in _reason(edit_signed(signed, hex_serial), store)

    def test_malformed_issuer_name(self, signed: bytes, store: TrustStore) -> None:
        def garble(_: etree._Element, signature: etree._Element) -> None:
            signature.find(f".//{ds('X509IssuerName')}").text = "no equals sign"  # type: ignore[union-attr]

        assert "distinguished name" in _reason(edit_signed(signed, garble), store)


class TestRejectsStructure:
    """Anything beyond one enveloped Signature with one Reference to "" is refused."""

    def test_second_signature(self, signed: bytes, store: TrustStore) -> None:
        def duplicate(root: etree._Element, signature: etree._Element) -> None:
            root[0].append(copy.deepcopy(signature))

        reason = _reason(edit_signed(signed, duplicate), store)
        assert "2 ds:Signature elements" in reason

    def test_signature_not_last(self, signed: bytes, store: TrustStore) -> None:
        def move_first(root: etree._Element, signature: etree._Element) -> None:
            root.insert(0, signature)

        assert "not the last child" in _reason(edit_signed(signed, move_first), store)

    def test_signature_nested_in_body(self, signed: bytes, store: TrustStore) -> None:
        def nest(root: etree._Element, signature: etree._Element) -> None:
            root[1].append(signature)

        assert "not a child of the root" in _reason(edit_signed(signed, nest), store)

    def test_comment_after_signature(self, signed: bytes, store: TrustStore) -> None:
        tampered = signed.replace(b"</sr:Response>", b"<!-- x --></sr:Response>")
        assert "a comment follows" in _reason(tampered, store)

    def test_text_after_signature(self, signed: bytes, store: TrustStore) -> None:
        tampered = signed.replace(b"</sr:Response>", b"x</sr:Response>")
        assert "text follows" in _reason(tampered, store)

    def test_reference_to_an_id(
        self, signed: bytes, store: TrustStore, key: ec.EllipticCurvePrivateKey
    ) -> None:
        def point_at_id(_: etree._Element, signature: etree._Element) -> None:
            signature.find(f".//{ds('Reference')}").set("URI", "#x")  # type: ignore[union-attr]

        reason = _reason(edit_signed(signed, point_at_id, resign_with=key), store)
        assert "URI='#x'" in reason

    def test_reference_without_uri(
        self, signed: bytes, store: TrustStore, key: ec.EllipticCurvePrivateKey
    ) -> None:
        def drop_uri(_: etree._Element, signature: etree._Element) -> None:
            del signature.find(f".//{ds('Reference')}").attrib["URI"]  # type: ignore[union-attr]

        assert "no URI attribute" in _reason(edit_signed(signed, drop_uri, resign_with=key), store)

    def test_extra_reference(
        self, signed: bytes, store: TrustStore, key: ec.EllipticCurvePrivateKey
    ) -> None:
        def add_reference(_: etree._Element, signature: etree._Element) -> None:
            reference = signature.find(f".//{ds('Reference')}")
            assert reference is not None
            reference.addnext(copy.deepcopy(reference))

        reason = _reason(edit_signed(signed, add_reference, resign_with=key), store)
        assert "exactly one ds:Reference" in reason

    def test_extra_transform(
        self, signed: bytes, store: TrustStore, key: ec.EllipticCurvePrivateKey
    ) -> None:
        def add_c14n(_: etree._Element, signature: etree._Element) -> None:
            transforms = signature.find(f".//{ds('Transforms')}")
            assert transforms is not None
            ds_element(transforms, "Transform", Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")

        reason = _reason(edit_signed(signed, add_c14n, resign_with=key), store)
        assert "2 Transforms" in reason

    @pytest.mark.parametrize(
        ("element", "algorithm"),
        [
            ("CanonicalizationMethod", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"),
            ("SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"),
            ("DigestMethod", "http://www.w3.org/2000/09/xmldsig#sha1"),
            ("Transform", "http://www.w3.org/TR/1999/REC-xpath-19991116"),
        ],
    )
    def test_wrong_algorithm(
        self,
        element: str,
        algorithm: str,
        signed: bytes,
        store: TrustStore,
        key: ec.EllipticCurvePrivateKey,
    ) -> None:
        def swap(_: etree._Element, signature: etree._Element) -> None:
            signature.find(f".//{ds(element)}").set("Algorithm", algorithm)  # type: ignore[union-attr]

        reason = _reason(edit_signed(signed, swap, resign_with=key), store)
        assert f"ds:{element} Algorithm is {algorithm!r}" in reason

    def test_inclusive_namespaces_child(
        self, signed: bytes, store: TrustStore, key: ec.EllipticCurvePrivateKey
    ) -> None:
        def add_prefix_list(_: etree._Element, signature: etree._Element) -> None:
            method = signature.find(f".//{ds('CanonicalizationMethod')}")
            assert method is not None
            etree.SubElement(
                method, "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces"
            ).set("PrefixList", "sr")

        reason = _reason(edit_signed(signed, add_prefix_list, resign_with=key), store)
        assert "child elements" in reason

    def test_der_signature_value(self, signed: bytes, store: TrustStore) -> None:
        def der_value(_: etree._Element, signature: etree._Element) -> None:
            value = signature.find(ds("SignatureValue"))
            assert value is not None
            der = p256_key().sign(b"x", ec.ECDSA(hashes.SHA256()))
            value.text = b64encode(der).decode()

        assert "raw r‖s, not DER" in _reason(edit_signed(signed, der_value), store)

    def test_signature_value_not_base64(self, signed: bytes, store: TrustStore) -> None:
        def garble(_: etree._Element, signature: etree._Element) -> None:
            signature.find(ds("SignatureValue")).text = "!!!"  # type: ignore[union-attr]

        assert "not valid base64" in _reason(edit_signed(signed, garble), store)

    def test_signature_value_with_line_breaks_is_fine(
        self, signed: bytes, store: TrustStore
    ) -> None:
        def wrap(_: etree._Element, signature: etree._Element) -> None:
            value = signature.find(ds("SignatureValue"))
            assert value is not None
            assert value.text is not None
            value.text = value.text[:40] + "\r\n" + value.text[40:]

        assert verify_document(edit_signed(signed, wrap), store).content == N64_DOCUMENT


class TestRejectsWrapping:
    """Content smuggled into or around the Signature is refused, never returned as signed."""

    def test_object_holding_a_copy_of_the_body(self, signed: bytes, store: TrustStore) -> None:
        def smuggle(root: etree._Element, signature: etree._Element) -> None:
            ds_element(signature, "Object").append(copy.deepcopy(root[1]))

        reason = _reason(edit_signed(signed, smuggle), store)
        assert "ds:Object" in reason
        assert "signature wrapping" in reason

    def test_content_moved_into_key_info(self, signed: bytes, store: TrustStore) -> None:
        def smuggle(root: etree._Element, signature: etree._Element) -> None:
            signature.find(ds("KeyInfo")).append(root[1])  # type: ignore[union-attr]

        assert "signature wrapping" in _reason(edit_signed(signed, smuggle), store)

    def test_original_wrapped_under_an_evil_root(self, signed: bytes, store: TrustStore) -> None:
        original = etree.fromstring(signed)
        signature = original.find(ds("Signature"))
        assert signature is not None
        evil = etree.fromstring(N64_DOCUMENT.replace(b"02010300", b"FFFFFFFF"))
        evil_signature = copy.deepcopy(signature)
        etree.SubElement(evil_signature, f"{{{DSIG_NS}}}Object").append(original)
        evil.append(evil_signature)
        reason = _reason(etree.tostring(evil), store)
        assert "2 ds:Signature elements" in reason

    def test_evil_content_beside_the_signed_body(self, signed: bytes, store: TrustStore) -> None:
        def add_body(root: etree._Element, _: etree._Element) -> None:
            evil = copy.deepcopy(root[1])
            root.insert(1, evil)

        assert "digest mismatch" in _reason(edit_signed(signed, add_body), store)


@pytest.fixture(scope="module")
def dcc_like() -> x509.Certificate:
    """A certificate named like DCC Boxed's DSP signer: issuer OU=07, CN=Z1."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "07"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Z1"),
        ]
    )
    return certificate(p256_key(), issuer=name, serial=50669612984035780968362471400449834504)


class TestTrustStore:
    """The trust store finds certificates by issuer + serial, however the issuer is spelled."""

    @pytest.mark.parametrize(
        "written",
        [
            "CN=Z1,OU=07",
            "OU=07,CN=Z1",
            "OU = 07, CN = Z1",
            "cn=Z1, ou=07",
            "2.5.4.3=Z1,2.5.4.11=07",
            "OID.2.5.4.3=Z1;OU=07",
            "CN=#0C025A31,OU=07",
            'CN="Z1",OU=07',
            "CN=\\5A1,OU=07",
        ],
    )
    def test_issuer_spellings_that_match(self, written: str, dcc_like: x509.Certificate) -> None:
        store = TrustStore([dcc_like])
        assert store.find(written, dcc_like.serial_number) == dcc_like

    @pytest.mark.parametrize("written", ["CN=z1,OU=07", "CN=Z1", "CN=Z1,OU=7", "CN=Z1,O=07"])
    def test_values_and_attributes_still_matter(
        self, written: str, dcc_like: x509.Certificate
    ) -> None:
        assert TrustStore([dcc_like]).find(written, dcc_like.serial_number) is None

    def test_serial_matters(self, dcc_like: x509.Certificate) -> None:
        assert TrustStore([dcc_like]).find("CN=Z1,OU=07", dcc_like.serial_number + 1) is None

    def test_from_files_and_pem_bundles(self, tmp_path: Path) -> None:
        first, second = (certificate(p256_key(), serial=n) for n in (1, 2))
        bundle = tmp_path / "bundle.pem"
        bundle.write_bytes(pem(first) + pem(second))
        store = TrustStore.from_files(bundle)
        assert len(store) == 2
        assert set(store) == {first, second}
        assert len(TrustStore.from_pem(pem(first), pem(second), pem(first))) == 2

    def test_conflicting_certificates(self) -> None:
        same_id = [certificate(p256_key(), serial=5) for _ in range(2)]
        with pytest.raises(ConfigError, match="share issuer"):
            TrustStore(same_id)

    def test_missing_file(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.pem"
        with pytest.raises(ConfigError, match=r"nope\.pem"):
            TrustStore.from_files(missing)

    def test_not_pem(self) -> None:
        with pytest.raises(ConfigError, match=r"not PEM X\.509"):
            TrustStore.from_pem(key_pem(p256_key()))


class TestAnyMutation:
    """Changing any byte of a signed document is refused unless the signed content is unchanged."""

    @settings(max_examples=300)
    @given(
        position=st.integers(min_value=0),
        replacement=st.integers(min_value=0, max_value=255),
    )
    def test_single_byte_mutation(
        self, position: int, replacement: int, signed: bytes, store: TrustStore
    ) -> None:
        index = position % len(signed)
        mutated = signed[:index] + bytes([replacement]) + signed[index + 1 :]
        outcome = _outcome(mutated, store)
        if mutated == signed:
            assert outcome == N64_DOCUMENT
        else:
            assert outcome == N64_DOCUMENT or (isinstance(outcome, str) and outcome)


def _outcome(data: bytes, trust: TrustStore) -> bytes | str:
    """The verified content, or the rejection reason (any other exception is a bug)."""
    try:
        return verify_document(data, trust).content
    except VerificationError as exc:
        return exc.reason
