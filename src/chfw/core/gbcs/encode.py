"""Build byte-exact General Signing messages: the decoder's inverse.

Used by tests and by the CSP simulator, which must produce many messages
quickly: without a signing key a message is a handful of byte concatenations
(a few microseconds). With a device key (EC P-256) the signature is ECDSA
SHA-256 over ``signed_bytes``, written as raw r‖s (64 octets).
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from chfw.core.domain.outcome import MAX_COUNTER, ActivationOutcome, OutcomeSource
from chfw.core.domain.values import ActivationResult, Eui64, FirmwareVersion
from chfw.core.gbcs.decode import (
    ALERT_ACTIVATION_FAILURE,
    ALERT_ACTIVATION_SUCCESS,
    CS06_ALERT_CODE,
    CS06_RESPONSE_CODE,
)
from chfw.core.gbcs.der import (
    encode_generalized_time,
    encode_integer,
    encode_length,
    encode_null,
    encode_octet_string,
    encode_sequence,
)
from chfw.core.gbcs.dlms import encode_date_time
from chfw.core.gbcs.message import CraFlag
from chfw.exceptions import InvalidValueError

_COORDINATE_OCTETS = 32
_NO_DATE_TIME = b"\x00"
_NO_SIGNATURE = b"\x00"


def encode_message(
    *,
    cra: CraFlag,
    counter: int,
    originator: Eui64,
    recipient: Eui64,
    message_code: int,
    content: bytes,
    date_time: datetime | None = None,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """One General Signing message around ``content`` (already DER), signed when a key is given."""
    if not 0 <= counter <= MAX_COUNTER:
        raise InvalidValueError(f"transaction counter {counter} is not in 0..2^64-1")
    if not 0 <= message_code <= 0xFFFF:
        raise InvalidValueError(f"message code {message_code} does not fit in two octets")
    signed = b"".join(
        (
            b"\x09",
            bytes((cra.value,)),
            counter.to_bytes(8, "big"),
            b"\x08",
            originator.octets,
            b"\x08",
            recipient.octets,
            _NO_DATE_TIME if date_time is None else b"\x0c" + encode_date_time(date_time),
            b"\x02",
            message_code.to_bytes(2, "big"),
            encode_length(len(content)),
            content,
        )
    )
    signature = _NO_SIGNATURE if signing_key is None else b"\x40" + sign_raw(signing_key, signed)
    return b"\xdf" + signed + signature


def sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256 SHA-256 over ``data`` as 64 octets r‖s, the GBCS form."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise InvalidValueError(f"a GBCS device key is EC P-256, not {key.curve.name}")
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(_COORDINATE_OCTETS, "big") + s.to_bytes(_COORDINATE_OCTETS, "big")


def encode_accepted(
    *,
    device_id: Eui64,
    recipient: Eui64,
    counter: int,
    date_time: datetime | None = None,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A CS06 'command accepted' response (content NULL): the activation is future-dated."""
    return encode_message(
        cra=CraFlag.RESPONSE,
        counter=counter,
        originator=device_id,
        recipient=recipient,
        message_code=CS06_RESPONSE_CODE,
        content=encode_null(),
        date_time=date_time,
        signing_key=signing_key,
    )


def encode_response(
    *,
    device_id: Eui64,
    recipient: Eui64,
    counter: int,
    result: ActivationResult,
    firmware_version: FirmwareVersion,
    date_time: datetime | None = None,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A CS06 immediate response carrying an execution outcome."""
    return encode_message(
        cra=CraFlag.RESPONSE,
        counter=counter,
        originator=device_id,
        recipient=recipient,
        message_code=CS06_RESPONSE_CODE,
        content=_execution_outcome(result, firmware_version),
        date_time=date_time,
        signing_key=signing_key,
    )


def encode_alert(
    *,
    device_id: Eui64,
    recipient: Eui64,
    message_counter: int,
    originator_counter: int,
    result: ActivationResult,
    firmware_version: FirmwareVersion,
    executed_at: datetime,
    date_time: datetime | None = None,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A future-dated activation alert: 0x8F66 for success, 0x8F67 for a failure result."""
    if not 0 <= originator_counter <= MAX_COUNTER:
        raise InvalidValueError(f"originator counter {originator_counter} is not in 0..2^64-1")
    content = encode_sequence(
        encode_integer(_alert_code(result)),
        encode_generalized_time(executed_at),
        encode_integer(originator_counter),
        _execution_outcome(result, firmware_version),
    )
    return encode_message(
        cra=CraFlag.ALERT,
        counter=message_counter,
        originator=device_id,
        recipient=recipient,
        message_code=CS06_ALERT_CODE,
        content=content,
        date_time=date_time,
        signing_key=signing_key,
    )


def encode_outcome(
    outcome: ActivationOutcome, *, signing_key: ec.EllipticCurvePrivateKey | None = None
) -> bytes:
    """The message that decodes to ``outcome`` (an alert's header date-time left absent)."""
    expected_code = (
        CS06_RESPONSE_CODE if outcome.source is OutcomeSource.RESPONSE else CS06_ALERT_CODE
    )
    if outcome.message_code != expected_code:
        raise InvalidValueError(
            f"a CS06 {outcome.source.value} has message code 0x{expected_code:04X}, "
            f"not 0x{outcome.message_code:04X}"
        )
    if outcome.source is OutcomeSource.RESPONSE:
        if outcome.alert_code is not None:
            raise InvalidValueError("a CS06 response carries no alert code")
        if outcome.message_counter != outcome.originator_counter:
            raise InvalidValueError(
                "a CS06 response echoes the command's counter: message_counter "
                f"{outcome.message_counter} must equal originator_counter "
                f"{outcome.originator_counter}"
            )
        if outcome.firmware_version is None:
            return encode_accepted(
                device_id=outcome.device_id,
                recipient=outcome.recipient,
                counter=outcome.originator_counter,
                date_time=outcome.occurred_at,
                signing_key=signing_key,
            )
        return encode_response(
            device_id=outcome.device_id,
            recipient=outcome.recipient,
            counter=outcome.originator_counter,
            result=outcome.result,
            firmware_version=outcome.firmware_version,
            date_time=outcome.occurred_at,
            signing_key=signing_key,
        )
    if outcome.firmware_version is None or outcome.occurred_at is None:
        raise InvalidValueError(
            "a future-dated activation alert needs an execution outcome with a firmware "
            "version and occurred_at (its executionDateTime)"
        )
    if outcome.alert_code is not None and outcome.alert_code != _alert_code(outcome.result):
        raise InvalidValueError(
            f"alert code 0x{outcome.alert_code:04X} contradicts the result {outcome.result.value!r}"
        )
    return encode_alert(
        device_id=outcome.device_id,
        recipient=outcome.recipient,
        message_counter=outcome.message_counter,
        originator_counter=outcome.originator_counter,
        result=outcome.result,
        firmware_version=outcome.firmware_version,
        executed_at=outcome.occurred_at,
        signing_key=signing_key,
    )


def _execution_outcome(result: ActivationResult, version: FirmwareVersion) -> bytes:
    code = result.response_code
    if code is None:
        raise InvalidValueError(
            "'accepted' has no execution outcome; use encode_accepted for a NULL response"
        )
    return encode_sequence(encode_integer(code), encode_octet_string(version.octets))


def _alert_code(result: ActivationResult) -> int:
    return (
        ALERT_ACTIVATION_SUCCESS if result is ActivationResult.SUCCESS else ALERT_ACTIVATION_FAILURE
    )
