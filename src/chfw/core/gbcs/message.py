"""The GBCS General Signing wrapper: header, content and device signature.

Byte layout (offsets from the start of the message)::

    0       DF                 General Signing tag
    1       09                 transaction id length
    2       CRA flag           01 command, 02 response, 03 alert
    3..10   counter            originator counter, 8 octets big-endian
    11      08, 12..19         originator system title (a response's: the CH's Device ID)
    20      08, 21..28         recipient system title
    29      00 | 0C + 12       date-time (DLMS COSEM), optional
    then    02 + 2             other information: the GBCS message code
    then    length + content   DER-style length (81/82/83/84 long forms)
    then    00 | 40 + 64       signature: absent, or ECDSA P-256 raw r‖s

The device signs every byte after the leading DF through the end of the
content (``signed_bytes``). The 09/08/0C/02/40 bytes are lengths and must be
exactly these values; anything else is a ``GbcsLengthError``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from chfw.core.domain.values import Eui64
from chfw.core.gbcs.der import DerReader, encode_length
from chfw.core.gbcs.dlms import DATE_TIME_LENGTH, decode_date_time
from chfw.exceptions import (
    GbcsFieldError,
    GbcsLengthError,
    GbcsMessageCodeError,
    GbcsTagError,
    GbcsTrailingBytesError,
)

GENERAL_SIGNING_TAG = 0xDF
GENERAL_CIPHERING_TAG = 0xDD
TRANSACTION_ID_LENGTH = 9
SYSTEM_TITLE_LENGTH = 8
MESSAGE_CODE_LENGTH = 2
SIGNATURE_LENGTH = 64
CRA_FLAG_OFFSET = 2


class CraFlag(enum.Enum):
    """First octet of the transaction id: what kind of message this is."""

    COMMAND = 0x01
    RESPONSE = 0x02
    ALERT = 0x03

    @property
    def label(self) -> str:
        """``02 (response)``, for error messages."""
        return f"{self.value:02X} ({self.name.lower()})"


@dataclass(frozen=True, slots=True)
class GeneralSigningMessage:
    """One decoded General Signing message, content still undecoded DER.

    ``content_offset`` is where ``content`` starts in the message, so that
    errors found while decoding the content can point into the message.
    ``date_time`` is UTC-aware, or None when absent or wholly unspecified.
    """

    cra: CraFlag
    transaction_counter: int
    originator: Eui64
    recipient: Eui64
    date_time: datetime | None
    message_code: int
    content: bytes
    content_offset: int
    signature: bytes | None
    signed_bytes: bytes

    @property
    def message_code_offset(self) -> int:
        """Offset of the two message-code octets (the header before it has fixed sizes)."""
        return self.content_offset - len(encode_length(len(self.content))) - MESSAGE_CODE_LENGTH


def parse_message(
    data: bytes, *, allowed: Mapping[CraFlag, int] | None = None
) -> GeneralSigningMessage:
    """Decode one whole General Signing message from ``data``; nothing may follow it.

    ``allowed`` maps each acceptable CRA flag to the message code it must
    carry; a message outside it is refused with ``GbcsMessageCodeError`` as
    soon as the offending field is read.
    """
    reader = DerReader(data)
    tag = reader.read_byte("the General Signing tag")
    if tag != GENERAL_SIGNING_TAG:
        if tag == GENERAL_CIPHERING_TAG:
            raise GbcsTagError(
                "message starts with 0xDD, the General Ciphering tag of a command sent to a "
                "device; expected 0xDF General Signing (a response or alert from the device)",
                0,
            )
        raise GbcsTagError(
            f"message starts with 0x{tag:02X}; expected 0xDF (GBCS General Signing)", 0
        )
    reader.expect_byte(TRANSACTION_ID_LENGTH, "transaction id length", GbcsLengthError)
    flag = reader.read_byte("the CRA flag")
    try:
        cra = CraFlag(flag)
    except ValueError:
        raise GbcsFieldError(
            f"CRA flag 0x{flag:02X} is not 01 (command), 02 (response) or 03 (alert)",
            CRA_FLAG_OFFSET,
        ) from None
    if allowed is not None and cra not in allowed:
        expected = " or ".join(flag.label for flag in allowed)
        raise GbcsMessageCodeError(
            f"CRA flag {cra.label} is not accepted here; expected {expected}", CRA_FLAG_OFFSET
        )
    counter = int.from_bytes(reader.read_bytes(8, "the transaction counter"), "big")
    reader.expect_byte(SYSTEM_TITLE_LENGTH, "originator system title length", GbcsLengthError)
    originator = Eui64(reader.read_bytes(SYSTEM_TITLE_LENGTH, "the originator system title"))
    reader.expect_byte(SYSTEM_TITLE_LENGTH, "recipient system title length", GbcsLengthError)
    recipient = Eui64(reader.read_bytes(SYSTEM_TITLE_LENGTH, "the recipient system title"))
    date_time = _read_date_time(reader)
    reader.expect_byte(MESSAGE_CODE_LENGTH, "message code length", GbcsLengthError)
    code_offset = reader.offset
    message_code = int.from_bytes(reader.read_bytes(2, "the message code"), "big")
    if allowed is not None and allowed[cra] != message_code:
        raise GbcsMessageCodeError(
            f"message code 0x{message_code:04X} is not accepted for CRA flag {cra.label}; "
            f"expected 0x{allowed[cra]:04X}",
            code_offset,
        )
    length = reader.read_length("the content")
    content_offset = reader.offset
    content = reader.read_bytes(length, "the content")
    signed_bytes = data[1 : reader.offset]
    signature = _read_signature(reader)
    reader.expect_end("the signature (end of the message)", GbcsTrailingBytesError)
    return GeneralSigningMessage(
        cra=cra,
        transaction_counter=counter,
        originator=originator,
        recipient=recipient,
        date_time=date_time,
        message_code=message_code,
        content=content,
        content_offset=content_offset,
        signature=signature,
        signed_bytes=signed_bytes,
    )


def _read_date_time(reader: DerReader) -> datetime | None:
    at = reader.offset
    length = reader.read_byte("the date-time length")
    if length == 0:
        return None
    if length != DATE_TIME_LENGTH:
        raise GbcsLengthError(
            f"date-time length must be 0x00 (absent) or 0x0C (12 octets), found 0x{length:02X}",
            at,
        )
    value_at = reader.offset
    return decode_date_time(reader.read_bytes(DATE_TIME_LENGTH, "the date-time"), value_at)


def _read_signature(reader: DerReader) -> bytes | None:
    at = reader.offset
    length = reader.read_byte("the signature length")
    if length == 0:
        return None
    if length != SIGNATURE_LENGTH:
        raise GbcsLengthError(
            f"signature length must be 0x00 (absent) or 0x40 (64-byte r‖s), found 0x{length:02X}",
            at,
        )
    return reader.read_bytes(SIGNATURE_LENGTH, "the signature")
