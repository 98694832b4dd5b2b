"""GBCS decoding (pure): the General Signing wrapper and CS06 activation outcomes.

``decode_outcome`` turns a Communications Hub's CS06 response or future-dated
activation alert (bytes or hex text) into a ``chfw.core.domain.ActivationOutcome``;
every malformed input raises a ``GbcsDecodeError`` subclass with the byte
offset of the problem. ``encode_*`` build the same messages (tests, the CSP
simulator); ``verify_device_signature`` checks the hub's ECDSA signature.
"""

from chfw.core.gbcs.decode import (
    ALERT_ACTIVATION_FAILURE,
    ALERT_ACTIVATION_SUCCESS,
    CS06_ALERT_CODE,
    CS06_RESPONSE_CODE,
    decode_message,
    decode_outcome,
    outcome_from_message,
)
from chfw.core.gbcs.encode import (
    encode_accepted,
    encode_alert,
    encode_message,
    encode_outcome,
    encode_response,
)
from chfw.core.gbcs.hextext import MessageInput, message_bytes
from chfw.core.gbcs.message import CraFlag, GeneralSigningMessage
from chfw.core.gbcs.signature import verify_device_signature

__all__ = [
    "ALERT_ACTIVATION_FAILURE",
    "ALERT_ACTIVATION_SUCCESS",
    "CS06_ALERT_CODE",
    "CS06_RESPONSE_CODE",
    "CraFlag",
    "GeneralSigningMessage",
    "MessageInput",
    "decode_message",
    "decode_outcome",
    "encode_accepted",
    "encode_alert",
    "encode_message",
    "encode_outcome",
    "encode_response",
    "message_bytes",
    "outcome_from_message",
    "verify_device_signature",
]
