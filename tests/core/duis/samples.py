"""Values, hypothesis strategies and document builders shared by the DUIS tests."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from chfw.core.domain import DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.core.duis import ResponseId, render_n64, render_n999

SR = "http://www.dccinterface.co.uk/ServiceUserGateway"
DS = "http://www.w3.org/2000/09/xmldsig#"

# docs/domain.md, "Worked example": CH 00-1D-A1-00-00-00-00-42 now runs 02010300.
DEVICE = DeviceId.parse("00-1D-A1-00-00-00-00-42")
DCC_USER = UserId.parse("90-B3-D5-1F-30-00-00-02")
FIRMWARE = FirmwareVersion.parse("02010300")
AT = datetime(2024, 5, 1, 12, 34, 56, 789123, tzinfo=UTC)
RESPONSE_ID = ResponseId(DCC_USER, DEVICE, 1234)

ALL_VERSIONS = tuple(DuisVersion(major, minor) for major, minor in DuisVersion.SUPPORTED)
N64_VERSIONS = tuple(v for v in ALL_VERSIONS if v.supports_n64)
V5_0 = DuisVersion(5, 0)
V5_1 = DuisVersion(5, 1)
V5_4 = DuisVersion(5, 4)


def n64(version: DuisVersion = V5_1, **overrides: Any) -> bytes:
    """An N64 document with the worked example's values unless overridden."""
    values: dict[str, Any] = {
        "response_id": RESPONSE_ID,
        "device_id": DEVICE,
        "firmware_version": FIRMWARE,
        "duis_version": version,
        "at": AT,
    }
    values.update(overrides)
    return render_n64(**values)


def n999(version: DuisVersion = V5_0, **overrides: Any) -> bytes:
    """An N999 document with the worked example's values unless overridden."""
    values: dict[str, Any] = {
        "response_id": RESPONSE_ID,
        "device_id": DEVICE,
        "duis_version": version,
        "at": AT,
    }
    values.update(overrides)
    return render_n999(**values)


# A ds:Signature shaped as docs/domain.md, "Signing" describes, with dummy base64 values:
# structurally valid XML-DSig, cryptographically meaningless.
SIGNATURE = (
    f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>'
    '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>'
    '<ds:Reference URI=""><ds:Transforms>'
    '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
    "</ds:Transforms>"
    '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
    f"<ds:DigestValue>{base64.b64encode(bytes(range(32))).decode()}</ds:DigestValue>"
    "</ds:Reference></ds:SignedInfo>"
    f"<ds:SignatureValue>{base64.b64encode(bytes(range(64))).decode()}</ds:SignatureValue>"
    "<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial>"
    "<ds:X509IssuerName>CN=chfw test issuer,O=Example</ds:X509IssuerName>"
    "<ds:X509SerialNumber>123456789</ds:X509SerialNumber>"
    "</ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo></ds:Signature>"
).encode()

CLOSE = b"</sr:Response>"


def with_signature(document: bytes, signature: bytes = SIGNATURE) -> bytes:
    """``document`` with ``signature`` appended as the last child of Response."""
    assert document.endswith(CLOSE)
    return document[: -len(CLOSE)] + signature + CLOSE


# --- hypothesis strategies -------------------------------------------------------

device_ids = st.binary(min_size=8, max_size=8).map(DeviceId)
user_ids = st.binary(min_size=8, max_size=8).map(UserId)
counters = st.one_of(
    st.integers(min_value=0, max_value=ResponseId.MAX_COUNTER),
    st.sampled_from([0, 1, 9, 10, 10**19 - 1, 10**19, ResponseId.MAX_COUNTER]),
)
carriable_versions = st.binary(min_size=1, max_size=4).map(FirmwareVersion)
utc_offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(timezone)
# A day's margin at each end keeps every offset inside datetime's range once in UTC.
aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.one_of(st.just(UTC), utc_offsets),
)
# Any text XML 1.0 can carry, so the escaping of every character class is exercised.
xml_texts = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"],
        exclude_characters="\ufffe\uffff",
    ).filter(lambda c: c in "\t\n\r" or c >= " "),
    min_size=1,
    max_size=40,
)


@st.composite
def n64_inputs(draw: st.DrawFn, versions: Sequence[DuisVersion] = N64_VERSIONS) -> dict[str, Any]:
    """Keyword arguments for render_n64, on one of ``versions``."""
    device = draw(device_ids)
    return {
        "response_id": ResponseId(draw(user_ids), device, draw(counters)),
        "device_id": device,
        "firmware_version": draw(carriable_versions),
        "duis_version": draw(st.sampled_from(versions)),
        "at": draw(aware_datetimes),
    }


@st.composite
def n999_inputs(draw: st.DrawFn, versions: Sequence[DuisVersion] = ALL_VERSIONS) -> dict[str, Any]:
    """Keyword arguments for render_n999, on one of ``versions``."""
    device = draw(device_ids)
    return {
        "response_id": ResponseId(draw(user_ids), device, draw(counters)),
        "device_id": device,
        "duis_version": draw(st.sampled_from(versions)),
        "at": draw(aware_datetimes),
        "alert_code": draw(st.one_of(st.just("N64"), xml_texts)),
    }
