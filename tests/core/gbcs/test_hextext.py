"""Messages arrive as bytes or as hex text; bad hex is reported at its byte offset."""

from __future__ import annotations

import pytest

from chfw.core.gbcs import message_bytes
from chfw.exceptions import GbcsDecodeError, GbcsHexError


class TestMessageBytes:
    """Bytes pass through; hex text tolerates whitespace and a 0x prefix."""

    def test_bytes_pass_through(self) -> None:
        assert message_bytes(b"\xdf\x09") == b"\xdf\x09"
        assert message_bytes(bytearray(b"\xdf")) == b"\xdf"
        assert message_bytes(memoryview(b"\xdf\x00")) == b"\xdf\x00"

    @pytest.mark.parametrize(
        "text",
        ["DF0902", "df0902", "DF 09 02", "  DF09\n02\r\n", "DF\t09 0 2", "0xDF0902", "0X df 09 02"],
    )
    def test_hex_spellings(self, text: str) -> None:
        assert message_bytes(text) == bytes.fromhex("DF0902")

    def test_empty_text_is_no_bytes(self) -> None:
        assert message_bytes(" \n") == b""

    @pytest.mark.parametrize(
        ("text", "offset", "character"),
        [
            ("DF09ZZ", 2, "'Z'"),
            ("DF 09 0G", 2, "'G'"),
            ("DF09020x11", 3, "'x'"),
            ("DFé9", 1, "'é'"),
            ("-DF", 0, "'-'"),
        ],
    )
    def test_non_hex_character(self, text: str, offset: int, character: str) -> None:
        with pytest.raises(GbcsHexError, match=f"{character} is not a hex digit") as caught:
            message_bytes(text)
        assert caught.value.offset == offset

    def test_odd_number_of_digits(self) -> None:
        with pytest.raises(GbcsHexError, match="odd number of hex digits") as caught:
            message_bytes("DF 09 0")
        assert caught.value.offset == 2

    def test_hex_errors_are_decode_errors(self) -> None:
        with pytest.raises(GbcsDecodeError):
            message_bytes("??")

    def test_other_types_are_a_programming_error(self) -> None:
        with pytest.raises(TypeError, match="bytes or hex text"):
            message_bytes(12)  # type: ignore[arg-type]
