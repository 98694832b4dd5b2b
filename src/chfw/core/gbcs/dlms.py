"""The 12-octet DLMS COSEM date-time of the General Signing header.

Layout: year (2 octets), month, day of month, day of week, hour, minute,
second, hundredths, deviation (signed, 2 octets, minutes), clock status.

DLMS uses the same octets for points in time and for schedule patterns
(0xFF "not specified", month 0xFD/0xFE "DST end/begin", day 0xFD/0xFE "second
last/last day of the month"). A message timestamp must be a point in time, so
the decoder applies these rules:

- every date and time field (year through second) not specified → ``None``:
  the hub had no time to give, as if the optional field were absent;
- otherwise year, month, day, hour and minute must be specified and in range;
  an unspecified second or hundredths counts as 0, the day of week (1..7 or
  0xFF) is not checked against the date, the clock status is not interpreted;
- deviation 0x8000 ("not specified") means UTC, the GBCS convention; any other
  value must lie in -720..720 and follows DLMS's classic reading, deviation =
  UTC − local time in minutes, so UTC = local + deviation (CET is -60).

The result is always an aware UTC ``datetime``. The encoder writes what the
DCC RTDS vectors contain: day of week 0xFF, deviation 0x8000, clock status
0xFF, e.g. ``07DF0101FF000000008000FF`` for 2015-01-01T00:00:00Z.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chfw.exceptions import GbcsFieldError, InvalidValueError

DATE_TIME_LENGTH = 12
NOT_SPECIFIED = 0xFF
YEAR_NOT_SPECIFIED = 0xFFFF
DEVIATION_NOT_SPECIFIED = -0x8000  # 0x8000 read as a signed 16-bit number
MAX_DEVIATION = 720


def decode_date_time(raw: bytes, offset: int) -> datetime | None:
    """Decode 12 octets found at absolute ``offset``; see the module docstring."""
    if len(raw) != DATE_TIME_LENGTH:
        raise GbcsFieldError(
            f"DLMS date-time must be {DATE_TIME_LENGTH} octets, got {len(raw)}", offset
        )
    year = int.from_bytes(raw[0:2], "big")
    month, day, weekday, hour, minute, second, hundredths = raw[2:9]
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    if year == YEAR_NOT_SPECIFIED and all(
        value == NOT_SPECIFIED for value in (month, day, hour, minute, second)
    ):
        return None

    def field(name: str, value: int, low: int, high: int, position: int) -> int:
        if not low <= value <= high:
            shown = "not specified (0xFF)" if value == NOT_SPECIFIED else f"0x{value:02X}"
            raise GbcsFieldError(
                f"DLMS date-time {raw.hex().upper()}: {name} is {shown}, a timestamp needs "
                f"{low}..{high}",
                offset + position,
            )
        return value

    if year == YEAR_NOT_SPECIFIED:
        raise GbcsFieldError(
            f"DLMS date-time {raw.hex().upper()}: year is not specified (0xFFFF)", offset
        )
    if weekday != NOT_SPECIFIED:
        field("day of week", weekday, 1, 7, 4)
    parts = (
        field("month", month, 1, 12, 2),
        field("day of month", day, 1, 31, 3),
        field("hour", hour, 0, 23, 5),
        field("minute", minute, 0, 59, 6),
        0 if second == NOT_SPECIFIED else field("second", second, 0, 59, 7),
        0 if hundredths == NOT_SPECIFIED else field("hundredths", hundredths, 0, 99, 8),
    )
    if deviation != DEVIATION_NOT_SPECIFIED and not -MAX_DEVIATION <= deviation <= MAX_DEVIATION:
        raise GbcsFieldError(
            f"DLMS date-time {raw.hex().upper()}: deviation {deviation} minutes is outside "
            f"-{MAX_DEVIATION}..{MAX_DEVIATION} (0x8000 = not specified)",
            offset + 9,
        )
    try:
        local = datetime(year, *parts[:5], parts[5] * 10_000, tzinfo=UTC)
        if deviation == DEVIATION_NOT_SPECIFIED:
            return local
        return local + timedelta(minutes=deviation)
    except (ValueError, OverflowError):
        raise GbcsFieldError(
            f"DLMS date-time {raw.hex().upper()} is not a valid date and time", offset
        ) from None


def encode_date_time(moment: datetime) -> bytes:
    """12 octets for an aware datetime, in UTC, to the hundredth of a second."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidValueError(f"a GBCS date-time needs an aware datetime, got {moment!r}")
    utc = moment.astimezone(UTC)
    hundredths, rest = divmod(utc.microsecond, 10_000)
    if rest:
        raise InvalidValueError(
            f"a DLMS date-time holds hundredths of a second; {moment.isoformat()} is finer"
        )
    return (
        utc.year.to_bytes(2, "big")
        + bytes((utc.month, utc.day, NOT_SPECIFIED, utc.hour, utc.minute, utc.second, hundredths))
        + b"\x80\x00\xff"
    )
