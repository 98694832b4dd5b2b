"""Builders for signing tests: identities, certificates, Response documents, re-signing."""

from __future__ import annotations

import datetime as dt
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st
from lxml import etree

from chfw.core.signing import PemSigner
from chfw.core.signing.canon import exclusive_canonical
from chfw.core.signing.profile import DSIG_NS, ds
from chfw.core.signing.signer import der_to_raw

SR_NS = "http://www.dccinterface.co.uk/ServiceUserGateway"

N64_DOCUMENT = (
    f'<sr:Response xmlns:sr="{SR_NS}" schemaVersion="5.1"><sr:Header>'
    "<sr:ResponseID>90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:1234</sr:ResponseID>"
    "<sr:ResponseCode>I0</sr:ResponseCode>"
    "<sr:ResponseDateTime>2025-03-01T12:00:00Z</sr:ResponseDateTime></sr:Header>"
    "<sr:Body><sr:DCCAlertMessage><sr:DCCAlertCode>N64</sr:DCCAlertCode><sr:DCCAlert>"
    "<sr:CommsHubFirmwareActivation><sr:DeviceID>00-1D-A1-00-00-00-00-42</sr:DeviceID>"
    "<sr:FirmwareVersion>02010300</sr:FirmwareVersion></sr:CommsHubFirmwareActivation>"
    "</sr:DCCAlert></sr:DCCAlertMessage></sr:Body></sr:Response>"
).encode()
"""A compact, canonical N64 alert as chfw.core.duis renders one (no Signature yet)."""


def p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def certificate(
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: x509.Name | None = None,
    serial: int = 1000,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
) -> x509.Certificate:
    """A certificate for ``key`` with a chosen issuer, serial and validity."""
    start = not_before or dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    name = issuer or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test signer")])
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "subject")]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(not_after or dt.datetime(2120, 1, 1, tzinfo=dt.UTC))
        .sign(issuer_key or key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class RecordingSigner:
    """A Signer test double that records the octets it was asked to sign.

    It also shows the Protocol at work: anything with these four members signs.
    """

    inner: PemSigner
    signed: list[bytes] = field(default_factory=list)

    @property
    def issuer_name(self) -> str:
        return self.inner.issuer_name

    @property
    def serial_number(self) -> int:
        return self.inner.serial_number

    @property
    def certificate(self) -> x509.Certificate:
        return self.inner.certificate

    def sign(self, data: bytes) -> bytes:
        self.signed.append(data)
        return self.inner.sign(data)


@dataclass
class ImpostorSigner:
    """Names one certificate in KeyInfo but signs with another key."""

    named: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def issuer_name(self) -> str:
        return self.named.issuer.rfc4514_string()

    @property
    def serial_number(self) -> int:
        return self.named.serial_number

    @property
    def certificate(self) -> x509.Certificate:
        return self.named

    def sign(self, data: bytes) -> bytes:
        return der_to_raw(self.key.sign(data, ec.ECDSA(hashes.SHA256())))


def edit_signed(
    signed: bytes,
    edit: Callable[[etree._Element, etree._Element], None],
    *,
    resign_with: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """Apply ``edit(root, signature)`` to a signed document; optionally re-sign its SignedInfo.

    Re-signing makes the SignatureValue match the edited SignedInfo, so a
    rejection can only come from the profile check under test.
    """
    root = etree.fromstring(signed)
    signature = root.find(ds("Signature"))
    assert signature is not None
    edit(root, signature)
    if resign_with is not None:
        signed_info = signature.find(ds("SignedInfo"))
        value = signature.find(ds("SignatureValue"))
        assert signed_info is not None
        assert value is not None
        raw = der_to_raw(
            resign_with.sign(exclusive_canonical(signed_info), ec.ECDSA(hashes.SHA256()))
        )
        value.text = b64encode(raw).decode()
    return etree.tostring(root)


def ds_element(parent: etree._Element, name: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, ds(name), attributes)


# Text that exercises every escaping rule of Canonical XML and non-ASCII.
xml_text = st.lists(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")),
        st.sampled_from(["&", "<", ">", '"', "'", "\t", "\n", "\r", " ", "]]>", "é", "€", "😀"]),
    ),
    max_size=24,
).map("".join)
_prefix = st.sampled_from(["ra", "ns3", "x", "q1"])


@st.composite
def response_documents(draw: st.DrawFn) -> bytes:
    """Canonical, unsigned ``sr:Response`` documents with random content and namespaces."""
    nsmap: dict[str | None, str] = {"sr": SR_NS}
    for prefix in draw(st.lists(_prefix, max_size=2, unique=True)):
        nsmap[prefix] = f"urn:test:{prefix}"
    if draw(st.booleans()):
        nsmap[None] = "urn:test:default"
    if draw(st.integers(0, 9)) == 0:
        nsmap["ds"] = DSIG_NS  # declared but unused, like DCC's own "ns3"
    root = etree.Element(f"{{{SR_NS}}}Response", nsmap=nsmap)
    root.set("schemaVersion", draw(st.sampled_from(["5.0", "5.1", "5.4"])))
    for index in range(draw(st.integers(1, 4))):
        child = etree.SubElement(root, f"{{{SR_NS}}}Part{index}")
        if draw(st.booleans()):
            child.set("note", draw(xml_text))
        if draw(st.booleans()):
            leaf = etree.SubElement(child, f"{{{SR_NS}}}Leaf")
            leaf.text = draw(xml_text)
            if draw(st.booleans()) and None in nsmap:
                etree.SubElement(child, "{urn:test:default}Other").text = draw(xml_text)
        else:
            child.text = draw(xml_text)
    return etree.tostring(root, method="c14n", with_comments=False)
