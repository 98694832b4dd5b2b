"""The strict DER reader refuses what DER forbids and reports absolute offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chfw.core.gbcs.der import (
    DerReader,
    encode_generalized_time,
    encode_integer,
    encode_length,
    encode_null,
    encode_octet_string,
    encode_sequence,
    tag_name,
)
from chfw.exceptions import (
    GbcsDerError,
    GbcsLengthError,
    GbcsTagError,
    GbcsTrailingBytesError,
    GbcsTruncatedError,
    InvalidValueError,
)


def reader(hex_text: str, **kwargs: object) -> DerReader:
    return DerReader(bytes.fromhex(hex_text), **kwargs)  # type: ignore[arg-type]


class TestLength:
    """Definite lengths: short form and minimal 81..84 long forms only."""

    @pytest.mark.parametrize(
        ("header", "length"),
        [("00", 0), ("7F", 127), ("8180", 128), ("81FF", 255), ("820100", 256)],
    )
    def test_reads_short_and_long_forms(self, header: str, length: int) -> None:
        data = bytes.fromhex(header) + bytes(length)
        der = DerReader(data)
        assert der.read_length("x") == length
        assert der.offset == len(bytes.fromhex(header))

    def test_reads_three_and_four_octet_lengths(self) -> None:
        assert DerReader(b"\x83\x01\x00\x00" + bytes(0x10000)).read_length("x") == 0x10000
        big = b"\x84\x01\x00\x00\x00" + bytes(0x1000000)
        assert DerReader(big).read_length("x") == 0x1000000

    def test_indefinite_length_is_refused(self) -> None:
        with pytest.raises(GbcsLengthError, match="indefinite") as caught:
            reader("0280", start=1).read_length("the content")
        assert caught.value.offset == 1

    def test_more_than_four_length_octets_is_refused(self) -> None:
        with pytest.raises(GbcsLengthError, match="5 length octets") as caught:
            reader("850000000100").read_length("the content")
        assert caught.value.offset == 0

    @pytest.mark.parametrize("header", ["817F", "820080", "83000100", "8400000100"])
    def test_non_minimal_long_form_is_refused(self, header: str) -> None:
        data = bytes.fromhex(header) + bytes(0x100)
        with pytest.raises(GbcsLengthError, match="not in DER minimal form") as caught:
            DerReader(data).read_length("the content")
        assert caught.value.offset == 0

    def test_length_past_end_of_input_is_truncation(self) -> None:
        with pytest.raises(GbcsTruncatedError, match="length says 5 byte") as caught:
            reader("AA05010203", start=1).read_length("the content")
        assert caught.value.offset == 1

    def test_length_past_end_of_container_is_a_length_error(self) -> None:
        der = reader("3003020501", bounded_by_input=True).read_sequence("outer")
        with pytest.raises(GbcsLengthError, match="runs past the end of outer") as caught:
            der.read_integer("inner")
        assert caught.value.offset == 3

    def test_cut_length_octets(self) -> None:
        with pytest.raises(GbcsTruncatedError, match="length of the content") as caught:
            reader("82 01".replace(" ", "")).read_length("the content")
        assert caught.value.offset == 1

    @pytest.mark.parametrize(
        ("length", "encoded"),
        [
            (0, "00"),
            (127, "7F"),
            (128, "8180"),
            (255, "81FF"),
            (256, "820100"),
            (0xFFFFFF, "83FFFFFF"),
            (0xFFFFFFFF, "84FFFFFFFF"),
        ],
    )
    def test_encodes_minimal_lengths(self, length: int, encoded: str) -> None:
        assert encode_length(length) == bytes.fromhex(encoded)

    @pytest.mark.parametrize("length", [-1, 1 << 32])
    def test_encoder_refuses_unrepresentable_lengths(self, length: int) -> None:
        with pytest.raises(InvalidValueError):
            encode_length(length)


class TestInteger:
    """INTEGERs are two's complement and minimal; 0x8F66 needs a leading 00."""

    @pytest.mark.parametrize(
        ("hex_text", "value"),
        [
            ("020100", 0),
            ("02017F", 127),
            ("02020080", 128),
            ("0201FF", -1),
            ("020180", -128),
            ("0202FF7F", -129),
            ("0203008F66", 0x8F66),
            ("02028F66", 0x8F66 - 0x10000),
            ("020203E9", 1001),
        ],
    )
    def test_decodes_with_sign_rule(self, hex_text: str, value: int) -> None:
        assert reader(hex_text).read_integer("n") == value
        assert encode_integer(value) == bytes.fromhex(hex_text)

    @pytest.mark.parametrize("hex_text", ["02020001", "0202FF80", "0203000080"])
    def test_non_minimal_is_refused_at_the_value(self, hex_text: str) -> None:
        with pytest.raises(GbcsDerError, match="not minimal") as caught:
            reader(hex_text, base=40).read_integer("responseCode")
        assert caught.value.offset == 42

    def test_empty_integer_is_refused(self) -> None:
        with pytest.raises(GbcsDerError, match="no content octets") as caught:
            reader("AA0200", start=1).read_integer("responseCode")
        assert caught.value.offset == 1

    def test_wrong_tag_names_both(self) -> None:
        with pytest.raises(GbcsTagError) as caught:
            reader("0401FF", base=7).read_integer("responseCode")
        assert caught.value.offset == 7
        assert "expected responseCode as INTEGER (0x02), found OCTET STRING (0x04)" in str(
            caught.value
        )

    @given(st.integers(min_value=-(1 << 80), max_value=1 << 80))
    def test_round_trips(self, value: int) -> None:
        encoded = encode_integer(value)
        der = DerReader(encoded)
        assert der.read_integer("n") == value
        assert der.at_end()


class TestOtherTypes:
    """OCTET STRING, NULL, SEQUENCE and the ends of containers."""

    def test_octet_string(self) -> None:
        assert reader("04040123ABCE").read_octet_string("v") == bytes.fromhex("0123ABCE")
        assert encode_octet_string(b"\x01") == b"\x04\x01\x01"

    def test_null(self) -> None:
        der = reader("0500")
        der.read_null("n")
        assert der.at_end()
        assert encode_null() == b"\x05\x00"

    def test_null_with_content_is_refused(self) -> None:
        with pytest.raises(GbcsDerError, match="NULL with 1 content byte") as caught:
            reader("050100", base=34).read_null("the accepted NULL")
        assert caught.value.offset == 34

    def test_sequence_reader_is_bounded_by_its_length(self) -> None:
        outer = reader("300302010004020102", bounded_by_input=True)
        body = outer.read_sequence("outcome")
        assert body.read_integer("responseCode") == 0
        with pytest.raises(GbcsDerError, match="outcome ends before firmwareVersion") as caught:
            body.read_octet_string("firmwareVersion")
        assert caught.value.offset == 5
        assert outer.read_octet_string("after") == b"\x01\x02"

    def test_expect_end_reports_leftovers(self) -> None:
        der = reader("050000", base=10)
        der.read_null("n")
        with pytest.raises(GbcsDerError, match="1 unexpected byte") as caught:
            der.expect_end("the NULL")
        assert caught.value.offset == 12
        with pytest.raises(GbcsTrailingBytesError):
            der.expect_end("the NULL", GbcsTrailingBytesError)

    def test_truncated_tag(self) -> None:
        with pytest.raises(GbcsTruncatedError, match="needs 1 byte") as caught:
            reader("").read_null("n")
        assert caught.value.offset == 0

    def test_sequence_encoding(self) -> None:
        assert encode_sequence(b"\x05\x00", b"\x05\x00") == bytes.fromhex("300405000500")

    def test_tag_names(self) -> None:
        assert tag_name(0x30) == "SEQUENCE (0x30)"
        assert tag_name(0xA1) == "tag 0xA1"


class TestGeneralizedTime:
    """Only YYYYMMDDHHMMSSZ, a real date, UTC."""

    def test_reads_the_rtds_execution_time(self) -> None:
        value = reader("180F" + b"20300115090000Z".hex()).read_generalized_time("t")
        assert value == datetime(2030, 1, 15, 9, 0, tzinfo=UTC)

    def test_reads_the_end_of_time(self) -> None:
        value = reader("180F" + b"99991231235959Z".hex()).read_generalized_time("t")
        assert value == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

    @pytest.mark.parametrize(
        "text",
        [
            b"20300115090000",
            b"2030011509000Z",
            b"20300115090000.5Z",
            b"2030011509000+Z",
            b"20300115090000z",
            b"203001150900\xd9\xa0Z",
        ],
    )
    def test_other_forms_are_refused(self, text: bytes) -> None:
        data = b"\x18" + bytes((len(text),)) + text
        with pytest.raises(GbcsDerError, match="YYYYMMDDHHMMSSZ") as caught:
            DerReader(data, base=50).read_generalized_time("executionDateTime")
        assert caught.value.offset == 52

    @pytest.mark.parametrize(
        "text", [b"20301315090000Z", b"20300230090000Z", b"20300115240000Z", b"00000101000000Z"]
    )
    def test_impossible_dates_are_refused(self, text: bytes) -> None:
        with pytest.raises(GbcsDerError, match="not a valid date") as caught:
            DerReader(b"\x18\x0f" + text).read_generalized_time("executionDateTime")
        assert caught.value.offset == 2

    def test_encodes_in_utc(self) -> None:
        plus_one = timezone(timedelta(hours=1))
        moment = datetime(2030, 1, 15, 10, 0, tzinfo=plus_one)
        assert encode_generalized_time(moment) == b"\x18\x0f20300115090000Z"

    def test_encodes_small_years_with_four_digits(self) -> None:
        moment = datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert encode_generalized_time(moment) == b"\x18\x0f09990102030405Z"

    def test_encoder_refuses_naive_and_fractions(self) -> None:
        with pytest.raises(InvalidValueError, match="aware"):
            encode_generalized_time(datetime(2030, 1, 1))
        with pytest.raises(InvalidValueError, match="whole seconds"):
            encode_generalized_time(datetime(2030, 1, 1, microsecond=1, tzinfo=UTC))
