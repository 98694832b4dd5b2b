"""The receiver over HTTP refusing hostile or broken documents: 4xx, a reason, nothing recorded."""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import load_pem_x509_certificate
from lxml import etree
from sqlalchemy.engine import Engine

from chfw.core.duis import SR_NAMESPACE
from chfw.core.signing import sign_canonical
from chfw.core.signing.profile import ds
from chfw.supplier import backoffice
from tests.core.signing.builders import ImpostorSigner, edit_signed
from tests.supplier.helpers import Dsp, Served, count_rows

SR = f"{{{SR_NAMESPACE}}}"
_N64_BODY_SWAPPED = (
    "<sr:CommsHubFirmwareActivation><sr:FirmwareVersion>02010300</sr:FirmwareVersion>"
    "<sr:DeviceID>00-1D-A1-00-00-00-00-42</sr:DeviceID></sr:CommsHubFirmwareActivation>"
)


def _assert_refused(
    engine: Engine, answer_status: int, answer_text: str, status: int, *reason: str
) -> None:
    assert answer_status == status, answer_text
    for words in reason:
        assert words in answer_text
    assert count_rows(engine, "bo_alerts") == 0
    assert count_rows(engine, "bo_hubs") == 0
    assert count_rows(engine, "bo_firmware_events") == 0
    with engine.connect() as conn:
        (rejection,) = backoffice.list_rejections(conn)
    assert rejection.status_code == status
    assert rejection.reason == answer_text
    assert rejection.remote == "127.0.0.1"


def _with_doctype(signed: bytes, doctype: str) -> bytes:
    return f'<?xml version="1.0"?>\n{doctype}\n'.encode() + signed


class TestSignature:
    """Tampered, wrongly keyed, unsigned, untrusted or expired signatures are refused."""

    def test_tampered(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        answer = receiver.post(dsp.n64("02010300").replace(b"02010300", b"02010301"))
        _assert_refused(engine, answer.status_code, answer.text, 400, "digest mismatch")

    def test_wrong_key_naming_the_trusted_certificate(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        impostor = Dsp(
            ImpostorSigner(
                load_pem_x509_certificate(dsp.cert_pem), ec.generate_private_key(ec.SECP256R1())
            ),
            dsp.cert_pem,
        )
        answer = receiver.post(impostor.n64())
        _assert_refused(engine, answer.status_code, answer.text, 400, "does not verify")

    def test_signer_not_in_the_trust_store(self, receiver: Served, engine: Engine) -> None:
        answer = receiver.post(Dsp.create("someone else").n64())
        _assert_refused(engine, answer.status_code, answer.text, 400, "unknown signer")

    def test_unsigned(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        answer = receiver.post(dsp.unsigned("N64", ""))
        _assert_refused(engine, answer.status_code, answer.text, 400, "not signed")

    def test_expired_certificate(self, serve: Callable[..., Served], engine: Engine) -> None:
        expired = Dsp.create(
            "expired DSP", now=datetime(2020, 1, 1, tzinfo=UTC), validity=timedelta(days=30)
        )
        server = serve(trust=expired.trust)
        answer = server.post(expired.n64())
        _assert_refused(engine, answer.status_code, answer.text, 400, "expired")

    def test_signature_wrapping(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        genuine = dsp.n64("02010300")

        def wrap(root: etree._Element, signature: etree._Element) -> None:
            original = copy.deepcopy(root)
            original.remove(original[-1])
            etree.SubElement(signature, ds("Object")).append(original)
            version = root.find(f".//{SR}FirmwareVersion")
            assert version is not None
            version.text = "09090909"

        answer = receiver.post(edit_signed(genuine, wrap))
        _assert_refused(engine, answer.status_code, answer.text, 400, "signature wrapping")

    def test_signature_moved_off_the_root(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        def move(root: etree._Element, signature: etree._Element) -> None:
            root[1].append(signature)

        answer = receiver.post(edit_signed(dsp.n64(), move))
        _assert_refused(engine, answer.status_code, answer.text, 400, "not a child of the root")

    def test_duplicated_ids_with_a_reference_to_one(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        key = serialization.load_pem_private_key(dsp.key_pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)

        def point_at_id(root: etree._Element, signature: etree._Element) -> None:
            root[0].set("Id", "alert")
            root[1].set("Id", "alert")
            reference = signature.find(f"{ds('SignedInfo')}/{ds('Reference')}")
            assert reference is not None
            reference.set("URI", "#alert")

        answer = receiver.post(edit_signed(dsp.n64(), point_at_id, resign_with=key))
        _assert_refused(engine, answer.status_code, answer.text, 400, "URI='#alert'")


class TestUnsafeXml:
    """DTDs, entities, external resources, deep trees and garbage are refused before anything."""

    def test_billion_laughs(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        entities = '<!ENTITY lol "lol">' + "".join(
            f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
            for n in range(1, 10)
        )
        body = _with_doctype(dsp.n64(), f"<!DOCTYPE sr:Response [{entities}]>").replace(
            b"02010300", b"&lol9;"
        )
        answer = receiver.post(body)
        _assert_refused(engine, answer.status_code, answer.text, 400)
        assert len(answer.content) < 1000  # no expansion echoed back

    def test_external_entity(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        body = _with_doctype(
            dsp.n64(), '<!DOCTYPE sr:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        ).replace(b"02010300", b"&xxe;")
        answer = receiver.post(body)
        _assert_refused(engine, answer.status_code, answer.text, 400)
        assert "root:" not in answer.text

    def test_doctype_on_a_validly_signed_document(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        # Canonical form drops the DOCTYPE, so the signature alone would still verify.
        answer = receiver.post(_with_doctype(dsp.n64(), "<!DOCTYPE sr:Response>"))
        _assert_refused(engine, answer.status_code, answer.text, 400, "DOCTYPE")

    def test_external_dtd_is_never_fetched(
        self, receiver: Served, dsp: Dsp, engine: Engine, listener: socket.socket
    ) -> None:
        port = listener.getsockname()[1]
        body = _with_doctype(
            dsp.n64(), f'<!DOCTYPE sr:Response SYSTEM "http://127.0.0.1:{port}/evil.dtd">'
        )
        answer = receiver.post(body)
        _assert_refused(engine, answer.status_code, answer.text, 400, "DOCTYPE")
        with pytest.raises(BlockingIOError):
            listener.accept()

    def test_deeply_nested(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        depth = 5000
        nested = "<sr:X>" * depth + "</sr:X>" * depth
        answer = receiver.post(dsp.unsigned("N12", nested))
        _assert_refused(engine, answer.status_code, answer.text, 400, "unreadable document")

    @pytest.mark.parametrize("body", [b"", b"not xml", b"<a>", b"\xff\xfe<x/>"])
    def test_not_xml(self, receiver: Served, engine: Engine, body: bytes) -> None:
        answer = receiver.post(body)
        _assert_refused(engine, answer.status_code, answer.text, 400, "unreadable document")


class TestSchema:
    """A document signed by the trusted DSP but not valid DUIS is refused."""

    def test_wrong_element_order(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        answer = receiver.post(dsp.other("N64", _N64_BODY_SWAPPED))
        _assert_refused(
            engine, answer.status_code, answer.text, 400, "not valid against", "FirmwareVersion"
        )
        with engine.connect() as conn:
            (rejection,) = backoffice.list_rejections(conn)
        assert rejection.response_id is not None  # verified, so worth showing

    def test_n64_code_with_another_alert_body(
        self, receiver: Served, dsp: Dsp, engine: Engine
    ) -> None:
        body = dsp.other(
            "N64",
            "<sr:DUISVersionMismatch><sr:DCCAlertVersionMismatch><sr:DCCAlertCode>N64"
            "</sr:DCCAlertCode></sr:DCCAlertVersionMismatch><sr:ServiceUserDUISVersion>5.1"
            "</sr:ServiceUserDUISVersion></sr:DUISVersionMismatch>",
        )
        answer = receiver.post(body)
        _assert_refused(engine, answer.status_code, answer.text, 400, "CommsHubFirmwareActivation")

    def test_unsupported_schema_version(self, receiver: Served, dsp: Dsp, engine: Engine) -> None:
        answer = receiver.post(dsp.other("N12", "<sr:X></sr:X>", duis="9.9"))
        _assert_refused(engine, answer.status_code, answer.text, 400, "schemaVersion")


class TestSize:
    """Bodies over the limit are answered 413, cut off early, and recorded as rejections only."""

    def test_declared_length_over_the_limit(
        self, serve: Callable[..., Served], dsp: Dsp, engine: Engine
    ) -> None:
        server = serve(max_bytes=4096)
        answer = server.post(dsp.n64() + b" " * 4096)
        _assert_refused(engine, answer.status_code, answer.text, 413, "exceeds 4096 bytes")

    def test_streamed_body_is_cut_off(
        self, serve: Callable[..., Served], dsp: Dsp, engine: Engine
    ) -> None:
        server = serve(max_bytes=64 * 1024)
        sent: list[int] = []

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
            for n in range(64):
                sent.append(n)
                yield b" " * 16 * 1024

        answer = server.post(chunks())
        _assert_refused(engine, answer.status_code, answer.text, 413, "exceeds 65536 bytes")
        with engine.connect() as conn:
            (rejection,) = backoffice.list_rejections(conn)
        assert 64 * 1024 < rejection.size < 64 * 16 * 1024

    def test_default_limit_is_one_mebibyte(self, receiver: Served, engine: Engine) -> None:
        answer = receiver.post(b"<x>" + b" " * (1024 * 1024) + b"</x>")
        _assert_refused(engine, answer.status_code, answer.text, 413, "exceeds 1048576 bytes")

    def test_a_document_within_the_limit_is_accepted(
        self, serve: Callable[..., Served], dsp: Dsp, engine: Engine
    ) -> None:
        body = dsp.n64()
        server = serve(max_bytes=len(body))
        assert server.post(body).status_code == 204
        assert count_rows(engine, "bo_alerts") == 1


def test_signing_helpers_make_verifiable_documents(dsp: Dsp) -> None:
    """Guard for this file: the DSP helper's documents are what the receiver accepts."""
    from chfw.core.signing import verify_document

    assert verify_document(
        sign_canonical(dsp.unsigned("N12", "<sr:X></sr:X>"), dsp.signer), dsp.trust
    )
