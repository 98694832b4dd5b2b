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

from chfw.domain.outcome import MAX_COUNTER, ActivationOutcome, OutcomeSource
from chfw.domain.values import ActivationResult, DeviceId, FirmwareVersion
from chfw.exceptions import GbcsDerError, GbcsMessageCodeError, GbcsTagError, InvalidValueError
from chfw.gbcs.der import TAG_NULL, TAG_SEQUENCE, DerReader, tag_name
from chfw.gbcs.hextext import MessageInput, message_bytes
from chfw.gbcs.message import CRA_FLAG_OFFSET, CraFlag, GeneralSigningMessage, parse_message

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
    return outcome_from_message(parse_message(message_bytes(data), allowed=CS06_MESSAGE_CODES))


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
