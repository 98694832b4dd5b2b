"""The documents the kit sends: genuine signed alerts, and the ways they are made hostile.

Genuine alerts are rendered by :mod:`chfw.core.duis` and signed by
:mod:`chfw.core.signing`, exactly as chfw's DSP makes them. Every hostile
form starts from one of them and changes one thing, so that a refusal can
only be for that thing. Nothing here does I/O: the external entities name
``uit.invalid`` (a name that never resolves, RFC 2606), so a parser that
tries to load one fails at once instead of reaching a real system.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.core.duis import ResponseId, render_n64, render_n999
from chfw.core.signing import PemSigner, Signer, create_development_identity, sign_canonical

#: Where the external-entity forms point: a reserved name that never resolves.
HARMLESS_TARGET = "https://uit.invalid/chfw-uit.dtd"


@dataclass(frozen=True, slots=True)
class Alert:
    """One genuine alert: its ResponseID, the values it signs, its canonical and signed bytes."""

    response_id: ResponseId
    code: str  # N64 or N999
    device_id: DeviceId
    firmware_version: str | None  # None for N999, which has no element for it
    unsigned: bytes
    signed: bytes


@dataclass(frozen=True)
class AlertMaker:
    """Makes the genuine alerts of one run: one CH, one DUIS version, fresh ResponseIDs.

    ``counters`` gives each alert its ResponseID counter; a run draws a random
    start so that a second run against the same endpoint is never a replay.
    """

    signer: Signer
    dcc_user_id: UserId
    device_id: DeviceId
    duis_version: DuisVersion
    firmware_version: FirmwareVersion
    at: Callable[[], dt.datetime]
    counters: Callable[[], int]

    @property
    def code(self) -> str:
        """The alert this version receives for a CH firmware activation."""
        return "N64" if self.duis_version.supports_n64 else "N999"

    def response_id(self) -> ResponseId:
        return ResponseId(self.dcc_user_id, self.device_id, self.counters())

    def genuine(self, signer: Signer | None = None) -> Alert:
        """The alert DCC sends for this version (N64 from 5.1, else N999), signed."""
        rid = self.response_id()
        if self.duis_version.supports_n64:
            document = self.n64_document(rid, self.duis_version)
            version: str | None = self.firmware_version.duis_text()
        else:
            document = render_n999(
                response_id=rid,
                device_id=self.device_id,
                duis_version=self.duis_version,
                at=self.at(),
            )
            version = None
        signed = sign_canonical(document, signer or self.signer)
        return Alert(rid, self.code, self.device_id, version, document, signed)

    def n64_document(self, rid: ResponseId, written_as: DuisVersion) -> bytes:
        """An unsigned N64 whose ``schemaVersion`` reads ``written_as`` (any version)."""
        n64_version = written_as if written_as.supports_n64 else DuisVersion(5, 1)
        document = render_n64(
            response_id=rid,
            device_id=self.device_id,
            firmware_version=self.firmware_version,
            duis_version=n64_version,
            at=self.at(),
        )
        return document.replace(
            f'schemaVersion="{n64_version}"'.encode(), f'schemaVersion="{written_as}"'.encode(), 1
        )

    def sign(self, document: bytes) -> bytes:
        return sign_canonical(document, self.signer)


def value_of(document: bytes, element: str) -> bytes:
    """The text of the first ``sr:element`` in a document chfw rendered."""
    match = re.search(rb"<sr:%s>([^<]*)</sr:%s>" % (element.encode(), element.encode()), document)
    if match is None:
        raise ValueError(f"no sr:{element} in the document")
    return match[1]


def with_value(document: bytes, element: str, value: bytes) -> bytes:
    """``document`` with the text of its first ``sr:element`` replaced by ``value``."""
    old = value_of(document, element)
    tag = element.encode()
    return document.replace(
        b"<sr:%s>%s</sr:%s>" % (tag, old, tag), b"<sr:%s>%s</sr:%s>" % (tag, value, tag), 1
    )


def another_device(device: DeviceId) -> bytes:
    """A different Device ID of the same form (last octet changed): for a tampered copy."""
    text = str(device)
    last = (int(text[-2:], 16) + 1) % 256
    return f"{text[:-2]}{last:02X}".encode()


def comment_inside(document: bytes, element: str) -> bytes:
    """A comment in the middle of an element's value: canonical form drops it, the digest holds.

    A reader that takes the first text node of the element sees only half the value.
    """
    return _split(document, element, lambda head, tail: head + b"<!---->" + tail)


def cdata_inside(document: bytes, element: str) -> bytes:
    """The second half of an element's value as a CDATA section (canonical form: plain text)."""
    return _split(document, element, lambda head, tail: head + b"<![CDATA[" + tail + b"]]>")


def reference_inside(document: bytes, element: str) -> bytes:
    """The first character of an element's value as a character reference (``&#x30;``)."""
    return _split(document, element, lambda head, tail: b"&#x%X;" % head[0] + head[1:] + tail)


def _split(document: bytes, element: str, make: Callable[[bytes, bytes], bytes]) -> bytes:
    value = value_of(document, element)
    half = max(len(value) // 2, 1)
    return with_value(document, element, make(value[:half], value[half:]))


def padded(signed: bytes, size: int) -> bytes:
    """A signed alert followed by a comment that makes the body ``size`` bytes long."""
    overhead = len(signed) + len(b"<!---->")
    return signed + b"<!--" + b"u" * max(size - overhead, 0) + b"-->"


def impostor_of(signer: Signer) -> PemSigner:
    """Another key whose certificate claims the trusted certificate's issuer and serial number.

    The endpoint finds the certificate it trusts from the KeyInfo, and the
    signature must then fail against that certificate's key.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    real = signer.certificate
    certificate = (
        x509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(real.issuer)
        .public_key(key.public_key())
        .serial_number(real.serial_number)
        .not_valid_before(real.not_valid_before_utc)
        .not_valid_after(real.not_valid_after_utc)
        .sign(key, hashes.SHA256())
    )
    return PemSigner(key, certificate)


def stranger() -> PemSigner:
    """A signer the endpoint has never heard of (a new self-signed development identity)."""
    key_pem, cert_pem = create_development_identity("chfw uit: a signer nobody trusts")
    return PemSigner.from_pem(key_pem, cert_pem)


@dataclass(frozen=True, slots=True)
class DoctypeForm:
    """One way a document can carry a DTD; ``make(target, signed)`` builds it."""

    name: str
    description: str
    make: Callable[[str, bytes], bytes]


def _declared(signed: bytes, subset: str) -> bytes:
    """``signed`` with an internal DTD subset declared before its root element."""
    return signed.replace(
        b"<sr:Response", b"<!DOCTYPE sr:Response [" + subset.encode() + b"]><sr:Response", 1
    )


def _laughs(signed: bytes) -> bytes:
    subset = '<!ENTITY a "uit-uit-uit-">' + "".join(
        f'<!ENTITY {name} "{("&" + previous + ";") * 10}">'
        for previous, name in (("a", "b"), ("b", "c"))
    )
    return with_value(_declared(signed, subset), "DeviceID", b"&c;")


def _internal(signed: bytes) -> bytes:
    value = value_of(signed, "DeviceID").decode()
    return with_value(_declared(signed, f'<!ENTITY v "{value}">'), "DeviceID", b"&v;")


#: Every DOCTYPE form the kit sends (and chfw's own receiver tests post, with other targets).
DOCTYPE_FORMS = (
    DoctypeForm(
        "parameter-entity-bare",
        "a bare document whose DTD loads an external parameter entity",
        lambda t, _: f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{t}"> %p;]><r/>'.encode(),
    ),
    DoctypeForm(
        "external-subset-bare",
        "a bare document naming an external DTD",
        lambda t, _: f'<!DOCTYPE r SYSTEM "{t}"><r/>'.encode(),
    ),
    DoctypeForm(
        "external-entity-bare",
        "a bare document using an external entity",
        lambda t, _: f'<!DOCTYPE r [<!ENTITY e SYSTEM "{t}">]><r>&e;</r>'.encode(),
    ),
    DoctypeForm(
        "parameter-entity",
        "a signed alert whose DTD loads an external parameter entity",
        lambda t, s: _declared(s, f'<!ENTITY % p SYSTEM "{t}"> %p;'),
    ),
    DoctypeForm(
        "external-entity",
        "a signed alert whose DeviceID is an external entity",
        lambda t, s: with_value(_declared(s, f'<!ENTITY e SYSTEM "{t}">'), "DeviceID", b"&e;"),
    ),
    DoctypeForm(
        "internal-entity",
        "a signed alert whose DeviceID is an internal entity (the signature still verifies)",
        lambda _, s: _internal(s),
    ),
    DoctypeForm(
        "entity-expansion",
        "a signed alert whose DeviceID expands nested entities (a small 'billion laughs')",
        lambda _, s: _laughs(s),
    ),
)
