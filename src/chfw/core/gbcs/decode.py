"""CS06 outcomes from GBCS bytes: the immediate response and the future-dated alert.

Two messages carry an outcome:

- a response (CRA 02, message code 0x0012) whose content is NULL ("command
  accepted": the activation is future-dated) or
  ``SEQUENCE { responseCode INTEGER, firmwareVersion OCTET STRING }``;
- an alert (CRA 03, message code 0x00CA) whose content is
  ``SEQUENCE { alertCode INTEGER, executionDateTime GeneralizedTime,
  originatorCounter INTEGER, SEQUENCE { responseCode, firmwareVersion } }``
  with alertCode 0x8F66 (success, responseCode 0) or 0x8F67 (failure,
  responseCode 1..3).

The outcome's ``originator_counter`` is the CS06 command's counter: the
response's transaction counter, or the alert content's originatorCounter.
``occurred_at`` is the alert's executionDateTime, or the response's header
date-time (None when absent).
"""

from __future__ import annotations

from datetime import datetime

from chfw.core.domain.outcome import MAX_COUNTER, ActivationOutcome, OutcomeSource
from chfw.core.domain.values import ActivationResult, DeviceId, Eui64, FirmwareVersion
from chfw.core.gbcs.der import (
    TAG_INTEGER,
    TAG_NULL,
    TAG_OCTET_STRING,
    TAG_SEQUENCE,
    DerReader,
    tag_name,
)
from chfw.core.gbcs.dlms import DATE_TIME_LENGTH, decode_date_time
from chfw.core.gbcs.hextext import MessageInput, message_bytes
from chfw.core.gbcs.message import (
    CRA_FLAG_OFFSET,
    SIGNATURE_LENGTH,
    CraFlag,
    GeneralSigningMessage,
    parse_message,
)
from chfw.exceptions import (
    GbcsDecodeError,
    GbcsDerError,
    GbcsMessageCodeError,
    GbcsTagError,
    InvalidValueError,
)

CS06_RESPONSE_CODE = 0x0012
CS06_ALERT_CODE = 0x00CA
ALERT_ACTIVATION_SUCCESS = 0x8F66
ALERT_ACTIVATION_FAILURE = 0x8F67

#: The CRA flags an outcome can come in, each with the message code it must carry.
CS06_MESSAGE_CODES = {CraFlag.RESPONSE: CS06_RESPONSE_CODE, CraFlag.ALERT: CS06_ALERT_CODE}

_RESPONSE_CODES_HELP = "0 success, 1 no image held, 2 hash mismatch, 3 activation failure"


def decode_message(data: MessageInput) -> GeneralSigningMessage:
    """Decode any General Signing message (bytes or hex text), content left as DER."""
    return parse_message(message_bytes(data))


def decode_outcome(data: MessageInput) -> ActivationOutcome:
    """Decode a CS06 response or future-dated activation alert into its outcome."""
    raw = message_bytes(data)
    common = _common_response(raw)
    if common is not None:
        return common
    return outcome_from_message(parse_message(raw, allowed=CS06_MESSAGE_CODES))


def _common_response(raw: bytes) -> ActivationOutcome | None:
    """The outcome of a CS06 response in its one common shape, read by fixed offsets; None
    for anything else, which the general decoder then reads (or refuses, saying why).

    A wave brings thousands of responses a second, all shaped alike: short-form
    lengths, a NULL or ``SEQUENCE { INTEGER 0..3, OCTET STRING }`` content. Read
    field by field through DerReader one costs ~38 µs; read here, ~12 µs. Any
    byte out of that shape leads to None, never to a different answer: the tests
    compare the two readers on every single-byte change of each shape, and on
    generated and mutated messages.
    """
    size = len(raw)
    if size < 35 or raw[0] != 0xDF or raw[1] != 9 or raw[2] != 2 or raw[11] != 8:
        return None
    if raw[20] != 8:
        return None
    at = 30  # the date-time's length octet is at 29
    occurred_at = None
    if raw[29] == DATE_TIME_LENGTH:
        at = 42
        try:
            occurred_at = decode_date_time(raw[30:42], 30)
        except GbcsDecodeError:
            return None
    elif raw[29] != 0:
        return None
    if size < at + 4 or raw[at] != 2 or raw[at + 1] != 0 or raw[at + 2] != CS06_RESPONSE_CODE:
        return None
    length = raw[at + 3]
    start = at + 4
    end = start + length
    if length >= 0x80 or size <= end:
        return None
    version: FirmwareVersion | None
    if length == 2 and raw[start] == TAG_NULL and raw[start + 1] == 0:
        result, version = ActivationResult.ACCEPTED, None
    else:
        octets = length - 7
        if (
            not 1 <= octets <= FirmwareVersion.MAX_OCTETS
            or raw[start] != TAG_SEQUENCE
            or raw[start + 1] != length - 2
            or raw[start + 2] != TAG_INTEGER
            or raw[start + 3] != 1
            or raw[start + 5] != TAG_OCTET_STRING
            or raw[start + 6] != octets
        ):
            return None
        found = _RESULTS.get(raw[start + 4])
        if found is None:
            return None
        result = found
        version = FirmwareVersion(raw[start + 7 : end])
    signature = raw[end]
    if not (
        (signature == 0 and size == end + 1)
        or (signature == SIGNATURE_LENGTH and size == end + 1 + SIGNATURE_LENGTH)
    ):
        return None
    counter = int.from_bytes(raw[3:11], "big")
    return ActivationOutcome(
        device_id=DeviceId(raw[12:20]),
        originator_counter=counter,
        result=result,
        firmware_version=version,
        source=OutcomeSource.RESPONSE,
        message_code=CS06_RESPONSE_CODE,
        message_counter=counter,
        recipient=Eui64(raw[21:29]),
        occurred_at=occurred_at,
    )


_RESULTS = {code: ActivationResult.from_response_code(code) for code in range(4)}


def outcome_from_message(message: GeneralSigningMessage) -> ActivationOutcome:
    """The outcome a decoded CS06 response or alert reports."""
    expected_code = CS06_MESSAGE_CODES.get(message.cra)
    if expected_code is None:
        raise GbcsMessageCodeError(
            f"CRA flag {message.cra.label}: a CS06 outcome comes in a response (02) or an "
            "alert (03), not a command",
            CRA_FLAG_OFFSET,
        )
    if message.message_code != expected_code:
        raise GbcsMessageCodeError(
            f"message code 0x{message.message_code:04X} with CRA flag {message.cra.label} is "
            f"not a CS06 outcome; expected 0x{expected_code:04X}",
            message.message_code_offset,
        )
    reader = DerReader(
        message.content,
        base=message.content_offset,
        container="the content",
        bounded_by_input=False,
    )
    if message.cra is CraFlag.RESPONSE:
        return _response_outcome(message, reader)
    return _alert_outcome(message, reader)


def _response_outcome(message: GeneralSigningMessage, reader: DerReader) -> ActivationOutcome:
    at = reader.offset
    tag = reader.peek_byte("the CS06 response (NULL or SEQUENCE)")
    result: ActivationResult
    version: FirmwareVersion | None
    if tag == TAG_NULL:
        reader.read_null("the CS06 'command accepted' NULL")
        result, version = ActivationResult.ACCEPTED, None
    elif tag == TAG_SEQUENCE:
        result, version = _read_execution_outcome(reader, "the CS06 response SEQUENCE")
    else:
        raise GbcsTagError(
            f"CS06 response content starts with {tag_name(tag)}; expected NULL (0x05, command "
            "accepted) or SEQUENCE (0x30, execution outcome)",
            at,
        )
    reader.expect_end("the CS06 response")
    return _outcome(message, message.transaction_counter, result, version, message.date_time)


def _alert_outcome(message: GeneralSigningMessage, reader: DerReader) -> ActivationOutcome:
    alert = reader.read_sequence("the CS06 alert SEQUENCE")
    reader.expect_end("the CS06 alert SEQUENCE")
    code_at = alert.offset
    alert_code = alert.read_integer("alertCode")
    if alert_code not in (ALERT_ACTIVATION_SUCCESS, ALERT_ACTIVATION_FAILURE):
        raise GbcsMessageCodeError(
            f"alertCode {_hex_code(alert_code)} is not a future-dated activation outcome "
            "(0x8F66 success, 0x8F67 failure)",
            code_at,
        )
    executed_at = alert.read_generalized_time("executionDateTime")
    counter_at = alert.offset
    counter = alert.read_integer("originatorCounter")
    if not 0 <= counter <= MAX_COUNTER:
        raise GbcsDerError(f"originatorCounter {counter} is not in 0..2^64-1", counter_at)
    result_at = alert.offset
    result, version = _read_execution_outcome(alert, "the alert's outcome SEQUENCE")
    alert.expect_end("the alert's outcome SEQUENCE")
    if alert_code == ALERT_ACTIVATION_SUCCESS and result is not ActivationResult.SUCCESS:
        raise GbcsDerError(
            f"alertCode 0x8F66 (success) carries responseCode {result.response_code} "
            f"({result.value}); 0x8F66 must carry 0",
            result_at,
        )
    if alert_code == ALERT_ACTIVATION_FAILURE and result is ActivationResult.SUCCESS:
        raise GbcsDerError(
            "alertCode 0x8F67 (failure) carries responseCode 0 (success); a failure carries "
            "1, 2 or 3",
            result_at,
        )
    return _outcome(message, counter, result, version, executed_at, alert_code)


def _read_execution_outcome(
    reader: DerReader, what: str
) -> tuple[ActivationResult, FirmwareVersion]:
    """``SEQUENCE { responseCode INTEGER, firmwareVersion OCTET STRING }``."""
    body = reader.read_sequence(what)
    code_at = body.offset
    code = body.read_integer("responseCode")
    try:
        result = ActivationResult.from_response_code(code)
    except InvalidValueError:
        raise GbcsDerError(
            f"responseCode {code} is not defined ({_RESPONSE_CODES_HELP})", code_at
        ) from None
    version_at = body.offset
    octets = body.read_octet_string("firmwareVersion")
    body.expect_end(what)
    if not 1 <= len(octets) <= FirmwareVersion.MAX_OCTETS:
        raise GbcsDerError(
            f"firmwareVersion has {len(octets)} octets; a hub reports 1 to "
            f"{FirmwareVersion.MAX_OCTETS}",
            version_at,
        )
    return result, FirmwareVersion(octets)


def _outcome(
    message: GeneralSigningMessage,
    originator_counter: int,
    result: ActivationResult,
    version: FirmwareVersion | None,
    occurred_at: datetime | None,
    alert_code: int | None = None,
) -> ActivationOutcome:
    return ActivationOutcome(
        device_id=DeviceId(message.originator.octets),
        originator_counter=originator_counter,
        result=result,
        firmware_version=version,
        source=OutcomeSource.RESPONSE if message.cra is CraFlag.RESPONSE else OutcomeSource.ALERT,
        message_code=message.message_code,
        message_counter=message.transaction_counter,
        recipient=message.recipient,
        occurred_at=occurred_at,
        alert_code=alert_code,
    )


def _hex_code(value: int) -> str:
    return f"0x{value:04X}" if value >= 0 else str(value)
