"""What a verified DUIS alert says, read from its tree (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from chfw.domain import DeviceId, FirmwareVersion
from chfw.exceptions import InvalidValueError

SR = "http://www.dccinterface.co.uk/ServiceUserGateway"
_NS = {"sr": SR}


class AlertShapeError(InvalidValueError):
    """A schema-valid document lacks what the receiver needs (e.g. no ResponseID)."""


@dataclass(frozen=True, slots=True)
class AlertFacts:
    response_id: str
    alert_code: str  # DCCAlertCode, e.g. N64, N999, N12
    schema_version: str
    alert_time: datetime
    device_id: DeviceId | None
    firmware_version: FirmwareVersion | None  # N64 only
    mismatch_alert_code: str | None  # N999: the alert the user could not receive

    @property
    def is_firmware_activation(self) -> bool:
        """N64, or an N999 standing in for an N64."""
        return self.alert_code == "N64" or (
            self.alert_code == "N999" and self.mismatch_alert_code == "N64"
        )


def _text(root: etree._Element, path: str) -> str | None:
    found = root.find(path, _NS)
    return found.text if found is not None and found.text is not None else None


def read_alert(root: etree._Element) -> AlertFacts:
    """Facts of a DCC alert; ``root`` is a verified, schema-valid Response."""
    response_id = _text(root, "sr:Header/sr:ResponseID")
    if not response_id:
        raise AlertShapeError("the alert has no ResponseID, so it cannot be deduplicated")
    when = _text(root, "sr:Header/sr:ResponseDateTime")
    try:
        alert_time = datetime.fromisoformat(when or "")
    except ValueError:
        raise AlertShapeError(f"ResponseDateTime {when!r} is not an xs:dateTime") from None
    if alert_time.tzinfo is None:
        alert_time = alert_time.replace(tzinfo=UTC)
    message = "sr:Body/sr:DCCAlertMessage"
    alert_code = _text(root, f"{message}/sr:DCCAlertCode")
    if not alert_code:
        raise AlertShapeError("the document is not a DCC alert (no DCCAlertMessage/DCCAlertCode)")
    device_text = None
    version_text = None
    mismatch = None
    activation = root.find(f"{message}/sr:DCCAlert/sr:CommsHubFirmwareActivation", _NS)
    if activation is not None:
        device_text = _text(activation, "sr:DeviceID")
        version_text = _text(activation, "sr:FirmwareVersion")
    mismatch_el = root.find(f"{message}/sr:DCCAlert/sr:DUISVersionMismatch", _NS)
    if mismatch_el is not None:
        mismatch = _text(mismatch_el, "sr:DCCAlertVersionMismatch/sr:DCCAlertCode")
        device_text = _text(mismatch_el, "sr:DCCAlertVersionMismatch/sr:DeviceID")
    return AlertFacts(
        response_id=response_id,
        alert_code=alert_code,
        schema_version=root.get("schemaVersion", ""),
        alert_time=alert_time.astimezone(UTC),
        device_id=DeviceId.parse(device_text) if device_text else None,
        firmware_version=_version(version_text) if version_text else None,
        mismatch_alert_code=mismatch,
    )


def _version(text: str) -> FirmwareVersion:
    # DUIS allows 1 to 8 characters; an odd count is a version whose first octet lost
    # its leading zero in a sender's rendering, so restore it rather than reject the alert.
    return FirmwareVersion.parse(text if len(text) % 2 == 0 else "0" + text)
