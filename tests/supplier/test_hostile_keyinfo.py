"""Malformed KeyInfo and signature values in real signed alerts, posted to a served receiver.

Each is refused with 400 and a reason, recorded as a rejection only; never a
500, never a hang (the client's timeout would end the test with an error).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import Engine

from chfw.supplier import backoffice
from tests.supplier.helpers import Dsp, Served, count_rows


def replace_text(document: bytes, element: str, value: bytes) -> bytes:
    """``document`` with the content of its (first) ds:``element`` replaced by ``value``."""
    pattern = rb"(<ds:%s>)(.*?)(</ds:%s>)" % (element.encode(), element.encode())
    changed, count = re.subn(pattern, lambda m: m[1] + value + m[3], document, count=1, flags=re.S)
    assert count == 1, element
    return changed


CASES = {
    "issuer name not a DN": ("X509IssuerName", b"not a distinguished name"),
    "issuer name empty": ("X509IssuerName", b""),
    "issuer name of another CA": ("X509IssuerName", b"CN=someone else"),
    "issuer name with an unknown type": ("X509IssuerName", b"XX=test DSP"),
    "issuer name with a dangling escape": ("X509IssuerName", b"CN=test DSP\\"),
    "issuer name with non-UTF-8 escapes": ("X509IssuerName", b"CN=\\ff\\fe"),
    "issuer name with odd hex": ("X509IssuerName", b"CN=#0c0"),
    "issuer name with bad DER hex": ("X509IssuerName", b"CN=#0c84ffffffff41"),
    "issuer name unterminated quote": ("X509IssuerName", b'CN="test DSP'),
    "issuer name 200 KB": ("X509IssuerName", b"CN=" + b"a" * 200_000),
    "issuer name of 10,000 RDNs": ("X509IssuerName", b"+".join([b"CN=a"] * 10_000)),
    "issuer name with a child element": ("X509IssuerName", b"<ds:X/>CN=test DSP"),
    "issuer name in CDATA with a comment": ("X509IssuerName", b"<![CDATA[CN=x]]><!-- -->y"),
    "issuer name as a dotted OID": ("X509IssuerName", b"OID.2.5.4.3=test DSP,1.2.3=x"),
    "issuer name with a 4,301-digit OID arc": (
        "X509IssuerName",
        b"OID.1." + b"1" * 4301 + b"=x",
    ),
    "serial negative": ("X509SerialNumber", b"-1"),
    "serial hexadecimal": ("X509SerialNumber", b"0x1F"),
    "serial with a sign": ("X509SerialNumber", b"+12"),
    "serial with non-ASCII digits": ("X509SerialNumber", "١٢٣".encode()),
    "serial empty": ("X509SerialNumber", b""),
    "serial with a decimal point": ("X509SerialNumber", b"1.0"),
    "serial of 4,000 digits": ("X509SerialNumber", b"9" * 4000),
    "serial of 4,301 digits": ("X509SerialNumber", b"9" * 4301),
    "serial of 100,000 digits": ("X509SerialNumber", b"7" * 100_000),
    "serial with an element inside": ("X509SerialNumber", b"1<x/>2"),
    "serial with a processing instruction": ("X509SerialNumber", b"<?pi x?>1"),
    "signature value not base64": ("SignatureValue", b"!!!!not base64!!!!"),
    "signature value DER, not raw": ("SignatureValue", b"MEUCIQ" + b"A" * 90),
    "signature value empty": ("SignatureValue", b""),
    "signature value truncated padding": ("SignatureValue", b"QUJD="),
    "signature value non-ASCII": ("SignatureValue", "ééé=".encode()),
    "digest value not base64": ("DigestValue", b"####"),
    "digest value too short": ("DigestValue", b"QUJD"),
    "digest value non-ASCII": ("DigestValue", "ÀÀÀÀ".encode()),
    "digest value 1 MB of whitespace": ("DigestValue", b" \n" * 300_000),
    "X509Data empty": ("X509Data", b""),
    "X509Data with two issuer serials": (
        "X509Data",
        b"<ds:X509IssuerSerial><ds:X509IssuerName>CN=a</ds:X509IssuerName>"
        b"<ds:X509SerialNumber>1</ds:X509SerialNumber></ds:X509IssuerSerial>" * 2,
    ),
    "X509Data with a foreign element": ("X509Data", b"<x:y xmlns:x='urn:x'/>"),
    "X509Data with a certificate only": (
        "X509Data",
        b"<ds:X509Certificate>AAAA</ds:X509Certificate>",
    ),
    "KeyInfo with text": ("KeyInfo", b"hello"),
}


def _params() -> list[object]:
    params: list[object] = []
    for name, (element, value, *known) in CASES.items():
        marks = [pytest.mark.xfail(strict=True, reason=str(known[0]))] if known else []
        params.append(pytest.param(element, value, id=name, marks=marks))
    return params


class TestMalformedKeyInfo:
    """A signed alert with one value of its Signature spoilt: 400 with the reason, nothing else."""

    @pytest.mark.parametrize(("element", "value"), _params())
    def test_refused(
        self, receiver: Served, dsp: Dsp, engine: Engine, element: str, value: bytes
    ) -> None:
        body = replace_text(dsp.n64(), element, value)
        if len(body) > receiver.app.receiver.config.max_bytes:
            pytest.skip("over the body limit: refused 413 before the signature is read")
        answer = receiver.post(body)
        assert answer.status_code == 400, answer.text
        assert answer.text
        assert count_rows(engine, "bo_alerts") == 0
        with engine.connect() as conn:
            (rejection,) = backoffice.list_rejections(conn)
        assert rejection.status_code == 400
        # The receiver still takes a good alert afterwards.
        assert receiver.post(dsp.n64()).status_code == 204
