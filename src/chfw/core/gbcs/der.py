"""A tiny strict DER reader and writer for the few types CS06 uses.

Strict because a CS06 answer decides whether millions of alerts are sent:
anything BER allows but DER forbids (indefinite or non-minimal lengths,
non-minimal INTEGERs, a NULL with content) is refused rather than guessed at.

Every offset the reader reports is absolute: ``base`` is where its buffer
starts inside the whole GBCS message, so errors point into the operator's
hex dump. Offsets name the first byte of the offending item (its tag, its
length octets or its value).

Running out of bytes has two meanings. When the reader's end is the end of
the input (``bounded_by_input``), the message was cut short:
``GbcsTruncatedError``. When it is the end of an enclosing DER container, a
length that overruns it is a ``GbcsLengthError`` and a missing element a
``GbcsDerError``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from chfw.exceptions import (
    GbcsDecodeError,
    GbcsDerError,
    GbcsLengthError,
    GbcsTagError,
    GbcsTruncatedError,
    InvalidValueError,
)

TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30

_TAG_NAMES = {
    TAG_INTEGER: "INTEGER",
    TAG_OCTET_STRING: "OCTET STRING",
    TAG_NULL: "NULL",
    TAG_GENERALIZED_TIME: "GeneralizedTime",
    TAG_SEQUENCE: "SEQUENCE",
}

#: Long-form lengths use at most this many octets (81, 82, 83, 84).
MAX_LENGTH_OCTETS = 4
_GENERALIZED_TIME_LENGTH = 15  # YYYYMMDDHHMMSSZ


def tag_name(tag: int) -> str:
    """``SEQUENCE (0x30)`` for known tags, ``tag 0xA1`` otherwise."""
    name = _TAG_NAMES.get(tag)
    return f"{name} (0x{tag:02X})" if name else f"tag 0x{tag:02X}"


class DerReader:
    """A cursor over ``data[start:end]`` that knows its absolute position."""

    __slots__ = ("_base", "_bounded_by_input", "_container", "_data", "_end", "_pos")

    def __init__(
        self,
        data: bytes,
        *,
        start: int = 0,
        end: int | None = None,
        base: int = 0,
        container: str = "message",
        bounded_by_input: bool = True,
    ) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end
        self._base = base
        self._container = container
        self._bounded_by_input = bounded_by_input

    @property
    def offset(self) -> int:
        """Absolute offset (in the whole message) of the next byte to read."""
        return self._base + self._pos

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def at_end(self) -> bool:
        return self._pos >= self._end

    # -- raw bytes ---------------------------------------------------------------------------

    def _missing(self, what: str, needed: int, at: int) -> GbcsDecodeError:
        """The error for ``needed`` bytes of ``what`` starting at buffer index ``at``."""
        have = self._end - at
        if self._bounded_by_input:
            return GbcsTruncatedError(
                f"message ends before {what} is complete: needs {needed} byte(s), {have} left",
                self._base + at,
            )
        return GbcsDerError(
            f"{self._container} ends before {what}: needs {needed} byte(s), {have} left",
            self._base + at,
        )

    def read_byte(self, what: str) -> int:
        if self._pos >= self._end:
            raise self._missing(what, 1, self._pos)
        value = self._data[self._pos]
        self._pos += 1
        return value

    def read_bytes(self, count: int, what: str) -> bytes:
        if self._end - self._pos < count:
            raise self._missing(what, count, self._pos)
        value = self._data[self._pos : self._pos + count]
        self._pos += count
        return value

    def peek_byte(self, what: str) -> int:
        if self._pos >= self._end:
            raise self._missing(what, 1, self._pos)
        return self._data[self._pos]

    def expect_byte(self, expected: int, what: str, error: type[GbcsDecodeError]) -> None:
        """Read one byte that must equal ``expected`` (a fixed tag or length)."""
        at = self.offset
        found = self.read_byte(what)
        if found != expected:
            raise error(f"{what} must be 0x{expected:02X}, found 0x{found:02X}", at)

    def expect_end(self, what: str, error: type[GbcsDecodeError] = GbcsDerError) -> None:
        """Refuse leftover bytes after ``what``."""
        if self._pos < self._end:
            raise error(
                f"{self._end - self._pos} unexpected byte(s) after {what}",
                self.offset,
            )

    # -- DER ---------------------------------------------------------------------------------

    def read_length(self, what: str) -> int:
        """A DER definite length (short form or 81..84 long form, minimal), within bounds."""
        at = self._pos
        first = self.read_byte(f"the length of {what}")
        if first < 0x80:
            length = first
        elif first == 0x80:
            raise GbcsLengthError(
                f"indefinite length (0x80) for {what} is not allowed in DER", self._base + at
            )
        else:
            count = first & 0x7F
            if count > MAX_LENGTH_OCTETS:
                raise GbcsLengthError(
                    f"length of {what} uses {count} length octets (0x{first:02X}); "
                    f"at most {MAX_LENGTH_OCTETS} (0x84) are supported",
                    self._base + at,
                )
            octets = self.read_bytes(count, f"the length of {what}")
            length = int.from_bytes(octets, "big")
            if octets[0] == 0 or length < 0x80:
                raise GbcsLengthError(
                    f"length {length} of {what} is not in DER minimal form "
                    f"({(bytes([first]) + octets).hex(' ').upper()})",
                    self._base + at,
                )
        if length > self._end - self._pos:
            have = self._end - self._pos
            if self._bounded_by_input:
                raise GbcsTruncatedError(
                    f"message ends before {what} is complete: its length says {length} "
                    f"byte(s), {have} left",
                    self._base + at,
                )
            raise GbcsLengthError(
                f"length {length} of {what} runs past the end of {self._container} "
                f"({have} byte(s) left)",
                self._base + at,
            )
        return length

    def read_tlv(self, tag: int, what: str) -> tuple[bytes, int]:
        """Read one element with the given tag; return its value and the value's offset."""
        at = self._pos
        found = self.read_byte(what)
        if found != tag:
            raise GbcsTagError(
                f"expected {what} as {tag_name(tag)}, found {tag_name(found)}", self._base + at
            )
        length = self.read_length(what)
        value_at = self._pos
        self._pos += length
        return self._data[value_at : self._pos], self._base + value_at

    def read_integer(self, what: str) -> int:
        """A DER INTEGER: two's complement, at least one octet, minimal."""
        at = self.offset
        value, value_at = self.read_tlv(TAG_INTEGER, what)
        if not value:
            raise GbcsDerError(f"{what} is an INTEGER with no content octets", at)
        if len(value) > 1 and (
            (value[0] == 0x00 and value[1] < 0x80) or (value[0] == 0xFF and value[1] >= 0x80)
        ):
            raise GbcsDerError(
                f"{what} INTEGER {value.hex().upper()} is not minimal: DER forbids a "
                "leading 00 or FF that the sign does not need",
                value_at,
            )
        return int.from_bytes(value, "big", signed=True)

    def read_octet_string(self, what: str) -> bytes:
        return self.read_tlv(TAG_OCTET_STRING, what)[0]

    def read_null(self, what: str) -> None:
        at = self.offset
        value, _ = self.read_tlv(TAG_NULL, what)
        if value:
            raise GbcsDerError(f"{what} is a NULL with {len(value)} content byte(s)", at)

    def read_sequence(self, what: str) -> DerReader:
        """Enter a SEQUENCE: a reader bounded by its contents."""
        value, value_at = self.read_tlv(TAG_SEQUENCE, what)
        return DerReader(
            self._data,
            start=value_at - self._base,
            end=value_at - self._base + len(value),
            base=self._base,
            container=what,
            bounded_by_input=False,
        )

    def read_generalized_time(self, what: str) -> datetime:
        """A GeneralizedTime in the one form CS06 uses: ``YYYYMMDDHHMMSSZ`` (UTC)."""
        value, value_at = self.read_tlv(TAG_GENERALIZED_TIME, what)
        return parse_generalized_time(value, what, value_at)


def parse_generalized_time(value: bytes, what: str, offset: int) -> datetime:
    """``YYYYMMDDHHMMSSZ`` → an aware UTC datetime; anything else is refused."""
    digits = value[:-1]
    if (
        len(value) != _GENERALIZED_TIME_LENGTH
        or value[-1:] != b"Z"
        or not (digits.isdigit() and digits.isascii())
    ):
        raise GbcsDerError(
            f"{what} {value!r} is not a GeneralizedTime of the form YYYYMMDDHHMMSSZ", offset
        )
    text = digits.decode("ascii")
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            tzinfo=UTC,
        )
    except ValueError:
        raise GbcsDerError(f"{what} {text}Z is not a valid date and time", offset) from None


# -- writing ---------------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """DER definite length, minimal; at most four length octets."""
    if length < 0x80:
        if length < 0:
            raise InvalidValueError(f"a DER length cannot be negative ({length})")
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    if size > MAX_LENGTH_OCTETS:
        raise InvalidValueError(f"length {length} needs more than {MAX_LENGTH_OCTETS} octets")
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def encode_tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(value)) + value


def encode_integer(value: int) -> bytes:
    """Minimal two's complement: 0x8F66 becomes ``02 03 00 8F 66``."""
    size = ((value if value >= 0 else ~value).bit_length() + 8) // 8  # room for the sign bit
    return encode_tlv(TAG_INTEGER, value.to_bytes(size, "big", signed=True))


def encode_octet_string(value: bytes) -> bytes:
    return encode_tlv(TAG_OCTET_STRING, value)


def encode_null() -> bytes:
    return b"\x05\x00"


def encode_sequence(*elements: bytes) -> bytes:
    return encode_tlv(TAG_SEQUENCE, b"".join(elements))


def encode_generalized_time(moment: datetime) -> bytes:
    """``YYYYMMDDHHMMSSZ`` of an aware datetime; refuses what that form cannot hold."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidValueError(f"GeneralizedTime needs an aware datetime, got {moment!r}")
    utc = moment.astimezone(UTC)
    if utc.microsecond:
        raise InvalidValueError(
            f"GeneralizedTime YYYYMMDDHHMMSSZ holds whole seconds; {moment.isoformat()} "
            "has a fraction (use .replace(microsecond=0))"
        )
    text = (
        f"{utc.year:04d}{utc.month:02d}{utc.day:02d}{utc.hour:02d}{utc.minute:02d}{utc.second:02d}Z"
    )
    return encode_tlv(TAG_GENERALIZED_TIME, text.encode("ascii"))
