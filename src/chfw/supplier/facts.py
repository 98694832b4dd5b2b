"""What a verified DUIS alert says, read from its tree (pure).

The tree is :attr:`chfw.core.signing.VerifiedDocument.root`: the signed octets
parsed again, so each value read here is exactly the text that was signed
(docs/security.md, "What is recorded is what was signed"). Values are kept
as signed -- a FirmwareVersion is any text the schema allows, hex or not --
and only interpreted where the back office must compare them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from chfw.core.domain import DeviceId
from chfw.core.duis import SR_NAMESPACE, ResponseId
from chfw.exceptions import InvalidValueError

SR = SR_NAMESPACE


class AlertShapeError(InvalidValueError):
    """A schema-valid document lacks what the receiver needs (e.g. no ResponseID)."""


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """The parts of one DCC alert the back office keeps, whatever its alert code."""

    response_id: str
    alert_code: str  # DCCAlertCode, e.g. N64, N999, N12
    schema_version: str
    alert_time: datetime  # ResponseDateTime, UTC
    device_id: DeviceId | None  # from the alert body, else the ResponseID's device
    firmware_version: str | None  # N64 only: FirmwareVersion exactly as signed
    mismatch_alert_code: str | None  # N999: the alert the user could not receive
    counter: int | None = None  # the ResponseID's counter, when it has DCC's form

    @property
    def order(self) -> tuple[datetime, int]:
        """Which of two alerts for one CH is the newer: alert time, then ResponseID counter.

        The DSP's counters never repeat and grow as it makes alerts, so two alerts
        stamped with the same time are told apart by their counters; an alert
        whose ResponseID has no counter sorts below any that has one.
        """
        return (self.alert_time, -1 if self.counter is None else self.counter)

    @property
    def is_firmware_activation(self) -> bool:
        """N64, or an N999 standing in for an N64."""
        return self.alert_code == "N64" or (
            self.alert_code == "N999" and self.mismatch_alert_code == "N64"
        )


def _child(parent: etree._Element | None, name: str) -> etree._Element | None:
    """The first child ``sr:name`` (a walk over a few children: 10x cheaper than find())."""
    if parent is None:
        return None
    tag = f"{{{SR}}}{name}"
    for child in parent:
        if child.tag == tag:
            return child
    return None


def _path(parent: etree._Element | None, *names: str) -> etree._Element | None:
    for name in names:
        parent = _child(parent, name)
    return parent


def _text(element: etree._Element | None) -> str | None:
    return element.text if element is not None else None


def alert_code_of(root: etree._Element) -> str | None:
    """Body/DCCAlertMessage/DCCAlertCode of any document, before it is validated."""
    return _text(_path(root, "Body", "DCCAlertMessage", "DCCAlertCode"))


def response_id_of(root: etree._Element) -> str | None:
    """Header/ResponseID of any document, before it is validated."""
    return _text(_path(root, "Header", "ResponseID"))


def read_alert(root: etree._Element, schema_version: str) -> AlertFacts:
    """Facts of a DCC alert; ``root`` is a verified, schema-valid Response.

    ``schema_version`` is the DUIS version it was validated as (its normal
    form, e.g. ``5.1``). Raises :class:`AlertShapeError` when the document is
    not a DCC alert or its alert code and body disagree.
    """
    header = _child(root, "Header")
    response_id = _text(_child(header, "ResponseID"))
    if not response_id:
        raise AlertShapeError("the alert has no ResponseID, so it cannot be deduplicated")
    message = _path(root, "Body", "DCCAlertMessage")
    alert_code = _text(_child(message, "DCCAlertCode"))
    if not alert_code:
        raise AlertShapeError(
            "the document is not a DCC alert (no Body/DCCAlertMessage/DCCAlertCode); this "
            "endpoint receives DCC alerts only"
        )
    device_text = None
    version_text = None
    mismatch = None
    if alert_code == "N64":
        activation = _path(message, "DCCAlert", "CommsHubFirmwareActivation")
        if activation is None:
            raise AlertShapeError("an N64 alert without DCCAlert/CommsHubFirmwareActivation")
        device_text = _text(_child(activation, "DeviceID"))
        version_text = _text(_child(activation, "FirmwareVersion"))
        if not device_text or not version_text:
            raise AlertShapeError("an N64 alert without DeviceID or FirmwareVersion")
    elif alert_code == "N999":
        mismatch_el = _path(message, "DCCAlert", "DUISVersionMismatch", "DCCAlertVersionMismatch")
        if mismatch_el is None:
            raise AlertShapeError(
                "an N999 alert without DCCAlert/DUISVersionMismatch/DCCAlertVersionMismatch"
            )
        mismatch = _text(_child(mismatch_el, "DCCAlertCode"))
        device_text = _text(_child(mismatch_el, "DeviceID"))
    try:
        device = DeviceId.parse(device_text) if device_text else _device_of(response_id)
    except InvalidValueError as exc:
        raise AlertShapeError(f"{alert_code} alert {response_id}: {exc}") from None
    return AlertFacts(
        response_id=response_id,
        alert_code=alert_code,
        schema_version=schema_version,
        alert_time=_alert_time(_text(_child(header, "ResponseDateTime"))),
        device_id=device,
        firmware_version=version_text,
        mismatch_alert_code=mismatch,
        counter=_counter_of(response_id),
    )


def _alert_time(text: str | None) -> datetime:
    try:
        when = datetime.fromisoformat(text or "")
    except ValueError:
        raise AlertShapeError(
            f"ResponseDateTime {text!r} is not a date and time the receiver can order alerts by"
        ) from None
    if when.tzinfo is None:  # xs:dateTime without a zone: DCC writes UTC
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _device_of(response_id: str) -> DeviceId | None:
    """The device a ResponseID names (DCC User ID : device : counter), if it has that form."""
    try:
        return ResponseId.parse(response_id).device_id
    except InvalidValueError:
        return None


# The counter of a ResponseID of DCC's form, read alone: every alert needs it, and parsing
# the two EUIs as well cost more than the rest of reading the facts.
_COUNTER = re.compile(r"[^:]+:[^:]+:(0|[1-9][0-9]{0,19})")


def _counter_of(response_id: str) -> int | None:
    """The ResponseID's counter when it has DCC's form (EUI:EUI:counter), else None."""
    match = _COUNTER.fullmatch(response_id)
    if match is None:
        return None
    counter = int(match[1])
    return counter if counter <= ResponseId.MAX_COUNTER else None
