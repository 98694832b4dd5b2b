"""Domain value types validate on construction and render their DUIS forms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chfw.core.domain import ActivationResult, DeviceId, DuisVersion, FirmwareVersion, UserId
from chfw.exceptions import FirmwareVersionNotCarriable, InvalidValueError


class TestEui64:
    """Device and User IDs accept common spellings and print the DUIS form."""

    @pytest.mark.parametrize(
        "text",
        [
            "00-DB-12-34-56-78-90-A0",
            "00db1234567890a0",
            "00:DB:12:34:56:78:90:A0",
            " 00DB1234567890A0 ",
        ],
    )
    def test_parses_spellings(self, text: str) -> None:
        device = DeviceId.parse(text)
        assert str(device) == "00-DB-12-34-56-78-90-A0"
        assert device.hex == "00DB1234567890A0"

    @pytest.mark.parametrize("text", ["", "00-DB", "00DB1234567890A0FF", "ZZDB1234567890A0", "0-0"])
    def test_rejects_malformed(self, text: str) -> None:
        with pytest.raises(InvalidValueError, match="Device ID"):
            DeviceId.parse(text)

    def test_rejects_wrong_octet_count(self) -> None:
        with pytest.raises(InvalidValueError, match="8 octets"):
            UserId(b"\x01\x02")

    def test_device_and_user_with_same_octets_differ(self) -> None:
        assert DeviceId(b"\x00" * 8) != UserId(b"\x00" * 8)

    @given(st.binary(min_size=8, max_size=8))
    def test_round_trips_through_text_and_int(self, octets: bytes) -> None:
        user = UserId(octets)
        assert UserId.parse(str(user)) == user
        assert UserId.from_int(int(user)) == user

    def test_from_int_range(self) -> None:
        with pytest.raises(InvalidValueError):
            DeviceId.from_int(1 << 64)


class TestFirmwareVersion:
    """Versions are octets; DUIS carries at most four of them."""

    def test_duis_text_is_upper_hex(self) -> None:
        assert FirmwareVersion(bytes.fromhex("0123abce")).duis_text() == "0123ABCE"

    def test_too_long_for_duis_is_refused_not_truncated(self) -> None:
        version = FirmwareVersion(bytes(range(5)))
        with pytest.raises(FirmwareVersionNotCarriable, match="5 octets"):
            version.duis_text()

    @pytest.mark.parametrize("text", ["", "123", "XYZW", "01 2"])
    def test_parse_rejects_bad_hex(self, text: str) -> None:
        with pytest.raises(InvalidValueError):
            FirmwareVersion.parse(text)

    def test_empty_octets_rejected(self) -> None:
        with pytest.raises(InvalidValueError):
            FirmwareVersion(b"")

    def test_ordering_is_numeric_on_octets(self) -> None:
        older, newer = FirmwareVersion.parse("0123ABCE"), FirmwareVersion.parse("0123ABCF")
        assert older < newer
        assert FirmwareVersion.parse("0102") < FirmwareVersion.parse("00000103")
        assert sorted([newer, older]) == [older, newer]

    @given(st.binary(min_size=1, max_size=8), st.binary(min_size=1, max_size=8))
    def test_ordering_is_total_and_consistent_with_equality(self, a: bytes, b: bytes) -> None:
        va, vb = FirmwareVersion(a), FirmwareVersion(b)
        assert (va < vb) + (vb < va) + (va == vb) == 1


class TestDuisVersion:
    """Only versions chfw renders are accepted; N64 exists from 5.1."""

    @pytest.mark.parametrize(("text", "n64"), [("5.0", False), ("5.1", True), ("5.4", True)])
    def test_supports_n64(self, text: str, n64: bool) -> None:
        assert DuisVersion.parse(text).supports_n64 is n64

    @pytest.mark.parametrize("text", ["4.9", "6.0", "5", "five", "5.1.2"])
    def test_rejects_unsupported(self, text: str) -> None:
        with pytest.raises(InvalidValueError):
            DuisVersion.parse(text)

    def test_orders(self) -> None:
        assert DuisVersion.parse("5.0") < DuisVersion.parse("5.1")
        assert str(DuisVersion(5, 3)) == "5.3"


class TestActivationResult:
    """Response codes map both ways; unknown codes are refused."""

    @pytest.mark.parametrize("code", [0, 1, 2, 3])
    def test_round_trip(self, code: int) -> None:
        assert ActivationResult.from_response_code(code).response_code == code

    def test_unknown_code(self) -> None:
        with pytest.raises(InvalidValueError, match="responseCode 9"):
            ActivationResult.from_response_code(9)

    def test_failure_flags(self) -> None:
        assert not ActivationResult.SUCCESS.is_failure
        assert not ActivationResult.ACCEPTED.is_failure
        assert ActivationResult.HASH_MISMATCH.is_failure
        assert ActivationResult.ACCEPTED.response_code is None
