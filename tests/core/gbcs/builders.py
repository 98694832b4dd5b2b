"""Small builders for GBCS test messages, malformed ones included.

Offsets below follow docs/domain.md, "The General Signing wrapper": the content of a
message without a date-time starts at byte 34, with one at byte 46.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import ec

from chfw.core.domain import DeviceId, Eui64
from chfw.core.gbcs import CraFlag, encode_message
from chfw.core.gbcs.der import encode_integer, encode_octet_string, encode_sequence, encode_tlv

DEVICE = DeviceId.parse("00-DB-12-34-56-78-90-A0")
SUPPLIER = Eui64.parse("90-B3-D5-1F-30-01-00-00")

CRA_OFFSET = 2
MESSAGE_CODE_OFFSET = 31
CONTENT_LENGTH_OFFSET = 33
CONTENT_OFFSET = 34
CONTENT_OFFSET_WITH_DATE_TIME = 46

EXECUTED = b"20300115090000Z"


def message(
    content: bytes,
    *,
    cra: CraFlag = CraFlag.RESPONSE,
    code: int = 0x0012,
    counter: int = 1000,
    date_time: datetime | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A General Signing message from the CH to the supplier around ``content``."""
    return encode_message(
        cra=cra,
        counter=counter,
        originator=DEVICE,
        recipient=SUPPLIER,
        message_code=code,
        content=content,
        date_time=date_time,
        signing_key=key,
    )


def execution(code: int = 0, version: bytes = bytes.fromhex("0123ABCE")) -> bytes:
    """``SEQUENCE { responseCode, firmwareVersion }``."""
    return encode_sequence(encode_integer(code), encode_octet_string(version))


def alert_content(
    alert_code: int = 0x8F66,
    *,
    executed: bytes = EXECUTED,
    counter: int = 1001,
    outcome: bytes | None = None,
) -> bytes:
    """The future-dated activation alert content, each part replaceable."""
    return encode_sequence(
        encode_integer(alert_code),
        encode_tlv(0x18, executed),
        encode_integer(counter),
        execution() if outcome is None else outcome,
    )


def alert(
    content: bytes,
    *,
    date_time: datetime | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A future-dated activation alert (CRA 03, code 0x00CA, counter 2000) around ``content``."""
    return message(
        content, cra=CraFlag.ALERT, code=0x00CA, counter=2000, date_time=date_time, key=key
    )
