"""chfw's errors: one root, a few branches, messages an operator can act on.

The whole tree, one line a class; a class defined outside this module is prefixed
with its module (``tests/test_exceptions.py`` checks the tree against the code)::

    ChfwError
    ├── InvalidValueError (ValueError)         a domain value failed validation on construction
    │   ├── FirmwareVersionNotCarriable         version longer than DUIS FirmwareVersion can carry
    │   ├── CohortFileError                     receiver.cohort: a cohort file unreadable as a whole
    │   └── AlertShapeError                     receiver.facts: a valid alert lacks a ResponseID…
    ├── GbcsDecodeError (ValueError)           a CS06 answer could not be decoded; has .offset
    │   ├── GbcsTruncatedError                  input ended before a field was complete
    │   ├── GbcsTagError                        a byte is not the tag expected there
    │   ├── GbcsLengthError                     a length runs past the end of its container
    │   ├── GbcsDerError                        content is not the DER structure CS06 defines
    │   ├── GbcsMessageCodeError                not a CS06 response/alert message code
    │   ├── GbcsTrailingBytesError              bytes left over after a complete message
    │   ├── GbcsFieldError                      a header field holds an undefined value
    │   └── GbcsHexError                        hex text is not hex (bad character, odd length)
    ├── DeviceSignatureError                    the CH's GBCS signature is missing or wrong
    ├── DuisError
    │   ├── DuisRenderError (ValueError)        an alert cannot be rendered from these values
    │   └── SchemaValidationError               a document fails the DUIS schema
    ├── XmlSignatureError
    │   ├── SigningError                        a document could not be signed
    │   └── VerificationError                   a signed document is not trusted; has .reason
    ├── ConfigError                             missing or invalid settings
    ├── EstateFileError (ValueError)            an estate file is unreadable as a whole
    ├── StoreError                              persistence failed
    │   ├── UnknownDeviceError                  the CH is not in the estate
    │   ├── UnknownCampaignError                no campaign of that name
    │   └── HubNotSuppliedError                 a hold names a hub the user does not supply
    ├── DeliveryError                           posting an alert to a Service User failed
    │   ├── RetryableDeliveryError              5xx, timeouts, refused connections: try again later
    │   └── PermanentDeliveryError              400 and other final answers: dead-letter it
    ├── UnsafeXmlError (ValueError)             xmlsafe: not well-formed, or has a DTD or entities
    │   └── LoadRefused                         xmlsafe: the parser asked to load a DTD or entity
    ├── NameSyntaxError (ValueError)            signing.names: a DN string is not RFC 4514 syntax
    ├── InventoryLookupError                    receiver.lookup: no version from the DSP; retried
    ├── FeedSyncError                           supplier.feed_sync: the DSP's feed unreadable
    ├── ObservationError                        uit.observe: an endpoint's record could not be read
    ├── ServiceStartError                       demo.processes: a child service did not come up
    └── DemoError                               demo.run: the demo could not complete a step

Invalid-input errors also subclass ``ValueError`` so callers that only know
the standard library still catch them.
"""

from __future__ import annotations


class ChfwError(Exception):
    """Root of every error chfw raises on purpose."""


class InvalidValueError(ChfwError, ValueError):
    """A domain value (device id, version, ...) is malformed."""


class FirmwareVersionNotCarriable(InvalidValueError):
    """DUIS FirmwareVersion holds at most 4 octets (8 hex characters); never truncate."""


class GbcsDecodeError(ChfwError, ValueError):
    """A GBCS message could not be decoded.

    ``offset`` is the byte offset, from the start of the message, where the
    problem was found, so a CSP operator can find it in a hex dump.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.offset = offset
        self.detail = message


class GbcsTruncatedError(GbcsDecodeError):
    """The message ends before a field is complete."""


class GbcsTagError(GbcsDecodeError):
    """A tag byte is not the one this position requires."""


class GbcsLengthError(GbcsDecodeError):
    """A length field is malformed or overruns its container."""


class GbcsDerError(GbcsDecodeError):
    """The content is not the DER structure CS06 defines."""


class GbcsMessageCodeError(GbcsDecodeError):
    """The message is not a CS06 response or future-dated activation alert."""


class GbcsTrailingBytesError(GbcsDecodeError):
    """Bytes remain after a complete message."""


class GbcsFieldError(GbcsDecodeError):
    """A General Signing header field holds a value GBCS does not define.

    E.g. a CRA flag other than 01/02/03, or a DLMS date-time that is not a
    point in time (month 13, a wildcard hour).
    """


class GbcsHexError(GbcsDecodeError):
    """Hex text given for a message is not hex; ``offset`` is the byte it would have made."""


class DeviceSignatureError(ChfwError):
    """The Communications Hub's GBCS signature is absent or does not verify."""


class DuisError(ChfwError):
    """Building or checking a DUIS document failed."""


class DuisRenderError(DuisError, ValueError):
    """The values given cannot make a valid alert document."""


class SchemaValidationError(DuisError):
    """A document is not valid against the DUIS schema for its version."""


class XmlSignatureError(ChfwError):
    """XML-Signature creation or verification failed."""


class SigningError(XmlSignatureError):
    """A document could not be signed (bad key, bad certificate, bad input)."""


class VerificationError(XmlSignatureError):
    """A signed document must not be trusted; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigError(ChfwError):
    """Settings are missing or invalid."""


class EstateFileError(ChfwError, ValueError):
    """An estate file cannot be read at all (bad header, broken JSON); bad rows are not this."""


class StoreError(ChfwError):
    """The database could not do what was asked."""


class UnknownDeviceError(StoreError):
    """The Communications Hub is not in the estate."""


class UnknownCampaignError(StoreError):
    """No firmware campaign has that name."""


class HubNotSuppliedError(StoreError):
    """A Service User named a hub it is not a supplier of (answered as unknown: 404)."""


class DeliveryError(ChfwError):
    """Posting an alert to a Service User's endpoint failed."""


class RetryableDeliveryError(DeliveryError):
    """A temporary failure (5xx, timeout, refused connection): retry with backoff."""


class PermanentDeliveryError(DeliveryError):
    """A final rejection (400): do not retry; dead-letter and tell an operator."""
