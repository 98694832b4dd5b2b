"""The header's DLMS date-time decodes to an aware UTC datetime, or is refused with its offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from chfw.core.gbcs.dlms import decode_date_time, encode_date_time
from chfw.exceptions import GbcsFieldError, InvalidValueError

RTDS = "07DF0101FF000000008000FF"  # the date-time of the RTDS CS06 responses
OFFSET = 30  # where a header date-time value starts


def decode(hex_text: str) -> datetime | None:
    return decode_date_time(bytes.fromhex(hex_text), OFFSET)


class TestDecode:
    """Point-in-time values decode; wildcards count as 0 where harmless."""

    def test_rtds_value(self) -> None:
        assert decode(RTDS) == datetime(2015, 1, 1, tzinfo=UTC)

    def test_all_fields(self) -> None:
        # 2024-02-29 (a Thursday, 4) 23:58:59.42, deviation 0 (UTC), clock status 00
        assert decode("07E8021D04173A3B2A000000") == datetime(
            2024, 2, 29, 23, 58, 59, 420000, tzinfo=UTC
        )

    def test_unspecified_second_and_hundredths_count_as_zero(self) -> None:
        assert decode("07DF0101FF0C1EFFFF8000FF") == datetime(2015, 1, 1, 12, 30, tzinfo=UTC)

    def test_wholly_unspecified_is_none(self) -> None:
        assert decode("FFFFFFFFFFFFFFFFFF8000FF") is None

    def test_day_of_week_is_not_checked_against_the_date(self) -> None:
        # 2015-01-01 was a Thursday (4); the hub says Monday (1)
        assert decode("07DF010101000000008000FF") == datetime(2015, 1, 1, tzinfo=UTC)

    def test_deviation_is_utc_minus_local(self) -> None:
        # CET: local 10:00 with deviation -60 (0xFFC4) is 09:00 UTC
        assert decode("07DF0101FF0A000000FFC400") == datetime(2015, 1, 1, 9, tzinfo=UTC)
        # deviation +720 (0x02D0) at local 20:00 is 08:00 UTC the next day
        assert decode("07DF0101FF1400000002D000") == datetime(2015, 1, 2, 8, tzinfo=UTC)

    def test_result_is_aware_utc(self) -> None:
        value = decode(RTDS)
        assert value is not None
        assert value.utcoffset() == timedelta(0)


class TestRefused:
    """Patterns and impossible values are GbcsFieldError at the offending octet."""

    @pytest.mark.parametrize(
        ("hex_text", "position", "fragment"),
        [
            ("07DF0D01FF000000008000FF", 2, "month is 0x0D"),
            ("07DFFE01FF000000008000FF", 2, "month is 0xFE"),
            ("07DFFF01FF000000008000FF", 2, "month is not specified"),
            ("07DF0100FF000000008000FF", 3, "day of month is 0x00"),
            ("07DF01FEFF000000008000FF", 3, "day of month is 0xFE"),
            ("07DF010108000000008000FF", 4, "day of week is 0x08"),
            ("07DF0101FF180000008000FF", 5, "hour is 0x18"),
            ("07DF0101FFFF0000008000FF", 5, "hour is not specified"),
            ("07DF0101FF003C00008000FF", 6, "minute is 0x3C"),
            ("07DF0101FF00003C008000FF", 7, "second is 0x3C"),
            ("07DF0101FF00000064800000", 8, "hundredths is 0x64"),
            ("07DF0101FF0000000002D100", 9, "deviation 721"),
            ("07DF0101FF00000000FD2F00", 9, "deviation -721"),
            ("FFFF0101FF000000008000FF", 0, "year is not specified"),
        ],
    )
    def test_out_of_range_fields(self, hex_text: str, position: int, fragment: str) -> None:
        with pytest.raises(GbcsFieldError, match=fragment) as caught:
            decode(hex_text)
        assert caught.value.offset == OFFSET + position

    @pytest.mark.parametrize(
        "hex_text",
        [
            "07DF021EFF000000008000FF",  # 30 February
            "00000101FF000000008000FF",  # year 0
            "270F0C1FFF173B00FF02D000",  # 9999-12-31 23:59 at deviation +720: year 10000 in UTC
        ],
    )
    def test_impossible_moments(self, hex_text: str) -> None:
        with pytest.raises(GbcsFieldError, match="not a valid date and time") as caught:
            decode(hex_text)
        assert caught.value.offset == OFFSET

    def test_wrong_size(self) -> None:
        with pytest.raises(GbcsFieldError, match="12 octets, got 11") as caught:
            decode_date_time(bytes(11), 5)
        assert caught.value.offset == 5


class TestEncode:
    """The encoder writes the RTDS style: weekday FF, deviation 0x8000, status FF."""

    def test_rtds_value(self) -> None:
        assert encode_date_time(datetime(2015, 1, 1, tzinfo=UTC)) == bytes.fromhex(RTDS)

    def test_converts_to_utc_and_keeps_hundredths(self) -> None:
        moment = datetime(2024, 3, 1, 0, 30, 5, 420000, tzinfo=timezone(timedelta(hours=1)))
        assert encode_date_time(moment) == bytes.fromhex(
            "07E8021DFF17 1E 05 2A 8000FF".replace(" ", "")
        )

    def test_refuses_naive_and_sub_hundredths(self) -> None:
        with pytest.raises(InvalidValueError, match="aware"):
            encode_date_time(datetime(2015, 1, 1))
        with pytest.raises(InvalidValueError, match="hundredths"):
            encode_date_time(datetime(2015, 1, 1, microsecond=5, tzinfo=UTC))
