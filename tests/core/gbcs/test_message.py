"""The General Signing wrapper decodes field by field; each malformation names its offset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chfw.core.domain import Eui64
from chfw.core.gbcs import CraFlag, decode_message
from chfw.core.gbcs.decode import CS06_MESSAGE_CODES
from chfw.core.gbcs.message import parse_message
from chfw.exceptions import (
    GbcsDecodeError,
    GbcsFieldError,
    GbcsLengthError,
    GbcsMessageCodeError,
    GbcsTagError,
    GbcsTrailingBytesError,
    GbcsTruncatedError,
)
from tests.core.gbcs.builders import (
    CONTENT_LENGTH_OFFSET,
    CONTENT_OFFSET,
    CONTENT_OFFSET_WITH_DATE_TIME,
    message,
)

SIGNATURE = bytes(range(64))
# docs/domain.md, "Worked example": response to command 1234 from CH 00-1D-A1-00-00-00-00-42.
WORKED_EXAMPLE = (
    "DF 09 02 00000000000004D2 08 001DA10000000042 08 90B3D51F30020000 00 02 0012 "
    "0B 30 09 02 01 00 04 04 02010300 40 " + SIGNATURE.hex()
)
CONTENT = bytes.fromhex("300902010004040201 0300".replace(" ", ""))


def with_byte(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + bytes((value,)) + data[offset + 1 :]


def assert_error(
    data: bytes, error: type[GbcsDecodeError], offset: int, fragment: str
) -> GbcsDecodeError:
    with pytest.raises(error) as caught:
        decode_message(data)
    assert caught.value.offset == offset
    assert fragment in str(caught.value)
    assert str(caught.value).endswith(f"(at byte offset {offset})")
    return caught.value


class TestDecodes:
    """Every header field lands in the GeneralSigningMessage."""

    def test_worked_example(self) -> None:
        parsed = decode_message(WORKED_EXAMPLE)
        assert parsed.cra is CraFlag.RESPONSE
        assert parsed.transaction_counter == 1234
        assert parsed.originator == Eui64.parse("00-1D-A1-00-00-00-00-42")
        assert parsed.recipient == Eui64.parse("90-B3-D5-1F-30-02-00-00")
        assert parsed.date_time is None
        assert parsed.message_code == 0x0012
        assert parsed.content == CONTENT
        assert parsed.content_offset == CONTENT_OFFSET
        assert parsed.message_code_offset == 31
        assert parsed.signature == SIGNATURE

    def test_signed_bytes_run_from_after_df_to_end_of_content(self) -> None:
        data = bytes.fromhex(WORKED_EXAMPLE.replace(" ", ""))
        parsed = decode_message(data)
        assert parsed.signed_bytes == data[1 : CONTENT_OFFSET + len(CONTENT)]
        assert parsed.signed_bytes[0] == 0x09
        assert data[-65:] == b"\x40" + SIGNATURE

    def test_date_time_and_absent_signature(self) -> None:
        data = message(b"\x05\x00", date_time=datetime(2015, 1, 1, tzinfo=UTC))
        assert data[29:42].hex().upper() == "0C07DF0101FF000000008000FF"
        parsed = decode_message(data)
        assert parsed.date_time == datetime(2015, 1, 1, tzinfo=UTC)
        assert parsed.content_offset == CONTENT_OFFSET_WITH_DATE_TIME
        assert parsed.message_code_offset == 43
        assert parsed.signature is None
        assert data[-1] == 0x00

    def test_commands_and_any_message_code_decode_without_a_policy(self) -> None:
        parsed = decode_message(message(b"", cra=CraFlag.COMMAND, code=0x1234))
        assert (parsed.cra, parsed.message_code, parsed.content) == (CraFlag.COMMAND, 0x1234, b"")

    @pytest.mark.parametrize(("size", "header"), [(127, "7F"), (128, "8180"), (300, "82012C")])
    def test_long_form_content_lengths(self, size: int, header: str) -> None:
        data = message(bytes(size))
        assert (
            data[CONTENT_LENGTH_OFFSET : CONTENT_LENGTH_OFFSET + len(header) // 2].hex().upper()
            == header
        )
        parsed = decode_message(data)
        assert parsed.content == bytes(size)
        assert parsed.content_offset == CONTENT_LENGTH_OFFSET + len(header) // 2
        assert parsed.message_code_offset == 31


class TestRefusesHeader:
    """Wrong tags and fixed lengths in the header."""

    def test_empty(self) -> None:
        assert_error(b"", GbcsTruncatedError, 0, "General Signing tag")

    def test_general_ciphering_command(self) -> None:
        assert_error(b"\xdd" + bytes(40), GbcsTagError, 0, "General Ciphering")

    def test_other_first_byte(self) -> None:
        assert_error(b"\x30\x00", GbcsTagError, 0, "starts with 0x30; expected 0xDF")

    @pytest.mark.parametrize(
        ("offset", "value", "fragment"),
        [
            (1, 0x0A, "transaction id length must be 0x09, found 0x0A"),
            (11, 0x10, "originator system title length must be 0x08, found 0x10"),
            (20, 0x07, "recipient system title length must be 0x08, found 0x07"),
            (29, 0x0B, "date-time length must be 0x00 (absent) or 0x0C"),
            (30, 0x03, "message code length must be 0x02, found 0x03"),
        ],
    )
    def test_fixed_lengths(self, offset: int, value: int, fragment: str) -> None:
        data = with_byte(message(b"\x05\x00"), offset, value)
        assert_error(data, GbcsLengthError, offset, fragment)

    @pytest.mark.parametrize("flag", [0x00, 0x04, 0xFF])
    def test_undefined_cra_flag(self, flag: int) -> None:
        data = with_byte(message(b"\x05\x00"), 2, flag)
        assert_error(data, GbcsFieldError, 2, f"CRA flag 0x{flag:02X} is not 01")

    def test_bad_date_time_value_points_at_its_octet(self) -> None:
        data = message(b"\x05\x00", date_time=datetime(2015, 1, 1, tzinfo=UTC))
        data = with_byte(data, 32, 13)  # month
        assert_error(data, GbcsFieldError, 32, "month is 0x0D")

    def test_policy_refuses_a_command_at_its_cra_flag(self) -> None:
        data = message(b"", cra=CraFlag.COMMAND)
        with pytest.raises(GbcsMessageCodeError, match="CRA flag 01 \\(command\\)") as caught:
            parse_message(data, allowed=CS06_MESSAGE_CODES)
        assert caught.value.offset == 2

    def test_policy_refuses_a_wrong_code_at_its_offset(self) -> None:
        data = message(b"", cra=CraFlag.ALERT, code=0x0012)
        with pytest.raises(GbcsMessageCodeError, match="expected 0x00CA") as caught:
            parse_message(data, allowed=CS06_MESSAGE_CODES)
        assert caught.value.offset == 31


class TestRefusesBody:
    """Content length, signature and what follows."""

    def test_content_length_past_end(self) -> None:
        data = message(b"\x05\x00")[: CONTENT_LENGTH_OFFSET + 1] + b"\x05"
        assert_error(
            data, GbcsTruncatedError, CONTENT_LENGTH_OFFSET, "length says 2 byte(s), 1 left"
        )

    def test_non_minimal_content_length(self) -> None:
        data = message(b"")
        data = data[:CONTENT_LENGTH_OFFSET] + b"\x81\x02\x05\x00\x00"
        assert_error(data, GbcsLengthError, CONTENT_LENGTH_OFFSET, "not in DER minimal form")

    def test_indefinite_content_length(self) -> None:
        data = message(b"")
        data = data[:CONTENT_LENGTH_OFFSET] + b"\x80\x05\x00\x00\x00\x00"
        assert_error(data, GbcsLengthError, CONTENT_LENGTH_OFFSET, "indefinite")

    def test_signature_length_other_than_40_or_00(self) -> None:
        data = message(b"\x05\x00")[:-1] + b"\x41" + bytes(65)
        assert_error(data, GbcsLengthError, CONTENT_OFFSET + 2, "signature length must be")

    def test_short_signature(self) -> None:
        data = message(b"\x05\x00")[:-1] + b"\x40" + bytes(63)
        assert_error(data, GbcsTruncatedError, CONTENT_OFFSET + 3, "the signature")

    def test_missing_signature_field(self) -> None:
        data = message(b"\x05\x00")[:-1]
        assert_error(data, GbcsTruncatedError, CONTENT_OFFSET + 2, "the signature length")

    def test_trailing_bytes(self) -> None:
        data = message(b"\x05\x00") + b"\x00\x00"
        assert_error(data, GbcsTrailingBytesError, len(data) - 2, "2 unexpected byte(s)")

    def test_trailing_bytes_after_a_signature(self) -> None:
        data = bytes.fromhex(WORKED_EXAMPLE.replace(" ", "")) + b"\xff"
        assert_error(data, GbcsTrailingBytesError, len(data) - 1, "1 unexpected byte(s)")

    @pytest.mark.parametrize("cut", [1, 2, 5, 11, 15, 20, 29, 30, 32, 33, 34, 44, 45, 100, 108])
    def test_every_cut_is_truncation(self, cut: int) -> None:
        data = bytes.fromhex(WORKED_EXAMPLE.replace(" ", ""))
        assert len(data) == 110
        with pytest.raises(GbcsTruncatedError) as caught:
            decode_message(data[:cut])
        assert caught.value.offset <= cut
