"""Render the DUIS Response documents of DCC Alerts N64 and N999.

The output is already in canonical form (inclusive C14N 1.0, which for these
documents is also their exclusive C14N): no XML declaration, one namespace
declaration on the root, start and end tag for every element, no whitespace
between elements, C14N text escaping. The signing module digests these bytes
directly instead of building a tree and canonicalising it -- the documents are
small and fixed in shape, and string templates are about ten times faster (~3 µs
against ~25 µs for building an lxml tree and serialising it as C14N).
The tests prove the bytes equal lxml's canonicalisation for generated inputs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from chfw.core.domain.values import DeviceId, DuisVersion, FirmwareVersion
from chfw.core.duis.response_id import ResponseId
from chfw.exceptions import DuisRenderError

SR_NAMESPACE = "http://www.dccinterface.co.uk/ServiceUserGateway"

_OPEN = f'<sr:Response xmlns:sr="{SR_NAMESPACE}" schemaVersion="'
_HEADER = '"><sr:Header><sr:ResponseID>'
_AFTER_ID = "</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode><sr:ResponseDateTime>"
_AFTER_TIME = "</sr:ResponseDateTime></sr:Header><sr:Body><sr:DCCAlertMessage><sr:DCCAlertCode>"
_N64_START = "N64</sr:DCCAlertCode><sr:DCCAlert><sr:CommsHubFirmwareActivation><sr:DeviceID>"
_N64_AFTER_DEVICE = "</sr:DeviceID><sr:FirmwareVersion>"
_N64_END = "</sr:FirmwareVersion></sr:CommsHubFirmwareActivation>"
_N999_START = (
    "N999</sr:DCCAlertCode><sr:DCCAlert><sr:DUISVersionMismatch><sr:DCCAlertVersionMismatch>"
    "<sr:DCCAlertCode>"
)
_N999_AFTER_CODE = "</sr:DCCAlertCode><sr:DeviceID>"
_N999_AFTER_DEVICE = "</sr:DeviceID></sr:DCCAlertVersionMismatch><sr:ServiceUserDUISVersion>"
_N999_END = "</sr:ServiceUserDUISVersion></sr:DUISVersionMismatch>"
_CLOSE = "</sr:DCCAlert></sr:DCCAlertMessage></sr:Body></sr:Response>"

# ".000Z" .. ".999Z": a table lookup is cheaper than formatting the milliseconds.
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))

# Characters XML 1.0 cannot carry at all, not even escaped.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_n64(
    *,
    response_id: ResponseId,
    device_id: DeviceId,
    firmware_version: FirmwareVersion,
    duis_version: DuisVersion,
    at: datetime,
) -> bytes:
    """N64 "Comms Hub Firmware Activation" for a user on DUIS 5.1 or later.

    Raises DuisRenderError for a DUIS version without N64 (send N999 instead)
    and FirmwareVersionNotCarriable for a version longer than 4 octets.
    """
    _check_common(response_id, device_id, duis_version)
    if not isinstance(firmware_version, FirmwareVersion):
        raise DuisRenderError(
            f"firmware_version must be a FirmwareVersion, got {type(firmware_version).__name__}"
        )
    if not duis_version.supports_n64:
        raise DuisRenderError(
            f"DUIS {duis_version} has no N64 (CommsHubFirmwareActivation exists from DUIS 5.1 on); "
            "a user on this version gets N999 DUIS Version Mismatch"
        )
    return (
        f"{_OPEN}{duis_version}{_HEADER}{response_id}{_AFTER_ID}{response_date_time(at)}"
        f"{_AFTER_TIME}{_N64_START}{device_id}{_N64_AFTER_DEVICE}{firmware_version.duis_text()}"
        f"{_N64_END}{_CLOSE}"
    ).encode()


def render_n999(
    *,
    response_id: ResponseId,
    device_id: DeviceId,
    duis_version: DuisVersion,
    at: datetime,
    alert_code: str = "N64",
) -> bytes:
    """N999 "DUIS Version Mismatch": ``alert_code`` could not be sent on the user's DUIS version.

    It carries no firmware version (its schema has no element for one); the
    user reads the new version from the inventory.
    """
    _check_common(response_id, device_id, duis_version)
    if not isinstance(alert_code, str) or not alert_code:
        raise DuisRenderError(f"alert_code must be a non-empty string, got {alert_code!r}")
    return (
        f"{_OPEN}{duis_version}{_HEADER}{response_id}{_AFTER_ID}{response_date_time(at)}"
        f"{_AFTER_TIME}{_N999_START}{_escape_text(alert_code, 'alert_code')}{_N999_AFTER_CODE}"
        f"{device_id}{_N999_AFTER_DEVICE}{duis_version}{_N999_END}{_CLOSE}"
    ).encode()


def _check_common(response_id: ResponseId, device_id: DeviceId, duis_version: DuisVersion) -> None:
    # Typed callers never trip these; they stop unvalidated text (a str where a
    # value type belongs) from reaching a document that is about to be signed.
    if not isinstance(response_id, ResponseId):
        raise DuisRenderError(f"response_id must be a ResponseId, got {type(response_id).__name__}")
    if not isinstance(device_id, DeviceId):
        raise DuisRenderError(f"device_id must be a DeviceId, got {type(device_id).__name__}")
    if not isinstance(duis_version, DuisVersion):
        raise DuisRenderError(
            f"duis_version must be a DuisVersion, got {type(duis_version).__name__}"
        )
    if response_id.device_id != device_id:
        raise DuisRenderError(
            f"ResponseID {response_id} names device {response_id.device_id}, "
            f"but the alert is about {device_id}"
        )


def response_date_time(at: datetime) -> str:
    """``at`` as the ResponseDateTime text: UTC xs:dateTime to the millisecond, e.g.
    ``2022-08-17T15:45:42.790Z`` (the form DCC's own documents use).

    Sub-millisecond digits are dropped, not rounded, so that the time never
    moves into the next second (or year).
    """
    if not isinstance(at, datetime):
        raise DuisRenderError(f"ResponseDateTime must be a datetime, got {type(at).__name__}")
    if at.utcoffset() is None:
        raise DuisRenderError(
            f"ResponseDateTime {at.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime.now(UTC)) so that it can be written in UTC"
        )
    try:
        utc = at if at.tzinfo is UTC else at.astimezone(UTC)
    except OverflowError:
        raise DuisRenderError(
            f"ResponseDateTime {at.isoformat()} is outside the years 1..9999 in UTC"
        ) from None
    # Alerts come in bursts: many documents share a second, so the formatted
    # date and time of the last second is kept (one tuple, swapped atomically).
    second = (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
    cached = _last_second
    if cached[0] == second:
        text = cached[1]
    else:
        text = "%04d-%02d-%02dT%02d:%02d:%02d" % second  # noqa: UP031 -- 4-digit years, fast
        _remember_second(second, text)
    return text + _MILLIS[utc.microsecond // 1000]


_last_second: tuple[tuple[int, ...], str] = ((), "")


def _remember_second(second: tuple[int, ...], text: str) -> None:
    global _last_second  # a one-entry memo: losing a race only costs a reformat
    _last_second = (second, text)


def _escape_text(text: str, what: str) -> str:
    """Escape character data as C14N writes it (``&``, ``<``, ``>``, and CR as ``&#xD;``)."""
    bad = _NOT_XML_CHAR.search(text)
    if bad is not None:
        raise DuisRenderError(
            f"{what} {text!r} contains {bad[0]!r} at index {bad.start()}, "
            "which XML 1.0 cannot carry"
        )
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")
    )
