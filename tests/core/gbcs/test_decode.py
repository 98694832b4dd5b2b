"""CS06 responses and future-dated alerts decode to outcomes; inconsistent content is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chfw.core.domain import (
    ActivationResult,
    DeviceId,
    FirmwareVersion,
    OutcomeEvent,
    OutcomeSource,
)
from chfw.core.gbcs import CraFlag, decode_message, decode_outcome, outcome_from_message
from chfw.core.gbcs.der import encode_integer, encode_octet_string, encode_sequence, encode_tlv
from chfw.exceptions import (
    GbcsDecodeError,
    GbcsDerError,
    GbcsLengthError,
    GbcsMessageCodeError,
    GbcsTagError,
)
from tests.core.gbcs.builders import (
    CONTENT_OFFSET,
    CONTENT_OFFSET_WITH_DATE_TIME,
    DEVICE,
    SUPPLIER,
    alert,
    alert_content,
    execution,
    message,
)

STAMP = datetime(2015, 1, 1, tzinfo=UTC)


def assert_error(data: bytes, error: type[GbcsDecodeError], offset: int, fragment: str) -> None:
    with pytest.raises(error) as caught:
        decode_outcome(data)
    assert caught.value.offset == offset
    assert fragment in str(caught.value)


class TestResponse:
    """CRA 02, code 0x0012: NULL is 'accepted', a SEQUENCE an execution outcome."""

    def test_worked_example_from_domain(self) -> None:
        outcome = decode_outcome(
            "DF 09 02 00000000000004D2 08 001DA10000000042 08 90B3D51F30020000 00 02 0012\n"
            "0B 30 09 02 01 00 04 04 02010300  40 " + "AB" * 64
        )
        assert outcome.device_id == DeviceId.parse("00-1D-A1-00-00-00-00-42")
        assert outcome.originator_counter == 1234
        assert outcome.message_counter == 1234
        assert outcome.result is ActivationResult.SUCCESS
        assert outcome.firmware_version == FirmwareVersion.parse("02010300")
        assert outcome.source is OutcomeSource.RESPONSE
        assert outcome.message_code == 0x0012
        assert outcome.alert_code is None
        assert outcome.occurred_at is None

    @pytest.mark.parametrize(
        ("code", "result"),
        [
            (0, ActivationResult.SUCCESS),
            (1, ActivationResult.NO_IMAGE_HELD),
            (2, ActivationResult.HASH_MISMATCH),
            (3, ActivationResult.ACTIVATION_FAILURE),
        ],
    )
    def test_response_codes(self, code: int, result: ActivationResult) -> None:
        data = message(execution(code, b"\x01\x23\xab\xcf"), counter=1005, date_time=STAMP)
        outcome = decode_outcome(data)
        assert outcome.result is result
        assert outcome.firmware_version == FirmwareVersion.parse("0123ABCF")
        assert outcome.occurred_at == STAMP
        assert outcome.recipient == SUPPLIER
        assert outcome.key.event is OutcomeEvent.OUTCOME

    def test_accepted(self) -> None:
        outcome = decode_outcome(message(bytes.fromhex("0500"), counter=1001))
        assert outcome.result is ActivationResult.ACCEPTED
        assert outcome.firmware_version is None
        assert outcome.originator_counter == 1001
        assert outcome.key.event is OutcomeEvent.ACCEPTED
        assert outcome.device_id == DEVICE

    def test_hex_and_bytes_agree(self) -> None:
        data = message(execution(0), date_time=STAMP)
        assert (
            decode_outcome(data)
            == decode_outcome(data.hex())
            == decode_outcome("0x" + data.hex(" ").upper())
        )

    def test_empty_content(self) -> None:
        assert_error(message(b""), GbcsDerError, CONTENT_OFFSET, "the content ends before")

    def test_other_content_tag(self) -> None:
        assert_error(
            message(encode_integer(0)), GbcsTagError, CONTENT_OFFSET, "expected NULL (0x05"
        )

    def test_null_with_content(self) -> None:
        assert_error(message(b"\x05\x01\x00"), GbcsDerError, CONTENT_OFFSET, "NULL with 1")

    def test_bytes_after_the_null(self) -> None:
        assert_error(message(b"\x05\x00\x05\x00"), GbcsDerError, CONTENT_OFFSET + 2, "2 unexpected")

    def test_bytes_after_the_sequence(self) -> None:
        content = execution(0) + b"\x00"
        assert_error(
            message(content), GbcsDerError, CONTENT_OFFSET + len(content) - 1, "1 unexpected"
        )

    def test_extra_element_in_the_sequence(self) -> None:
        content = encode_sequence(encode_integer(0), encode_octet_string(b"\x01"), b"\x05\x00")
        assert_error(message(content), GbcsDerError, CONTENT_OFFSET + 8, "unexpected byte")

    @pytest.mark.parametrize("code", [4, -1, 0x8F66])
    def test_undefined_response_code(self, code: int) -> None:
        assert_error(
            message(execution(code)),
            GbcsDerError,
            CONTENT_OFFSET + 2,
            f"responseCode {code} is not defined",
        )

    def test_missing_firmware_version(self) -> None:
        content = encode_sequence(encode_integer(0))
        assert_error(message(content), GbcsDerError, CONTENT_OFFSET + 5, "before firmwareVersion")

    def test_firmware_version_with_wrong_tag(self) -> None:
        content = encode_sequence(encode_integer(0), encode_tlv(0x0C, b"1.2"))
        assert_error(message(content), GbcsTagError, CONTENT_OFFSET + 5, "found tag 0x0C")

    def test_empty_firmware_version(self) -> None:
        assert_error(message(execution(0, b"")), GbcsDerError, CONTENT_OFFSET + 5, "has 0 octets")

    def test_overlong_firmware_version(self) -> None:
        assert_error(
            message(execution(0, bytes(33))), GbcsDerError, CONTENT_OFFSET + 5, "has 33 octets"
        )

    def test_inner_length_overruns_the_content(self) -> None:
        content = bytes.fromhex("3009020100040502010300")
        assert_error(message(content), GbcsLengthError, CONTENT_OFFSET + 6, "runs past the end")

    def test_sequence_length_overruns_the_content(self) -> None:
        content = bytes.fromhex("300A020100040402010300")
        assert_error(message(content), GbcsLengthError, CONTENT_OFFSET + 1, "runs past the end")

    def test_alert_code_for_a_response_is_refused(self) -> None:
        data = message(execution(0), code=0x00CA)
        assert_error(data, GbcsMessageCodeError, 31, "expected 0x0012")

    def test_wrong_code_offset_follows_the_date_time(self) -> None:
        data = message(execution(0), code=0x0013, date_time=STAMP)
        assert_error(data, GbcsMessageCodeError, 43, "message code 0x0013")


class TestAlert:
    """CRA 03, code 0x00CA: the outcome and the command's counter are in the content."""

    def test_success(self) -> None:
        outcome = decode_outcome(alert(alert_content(0x8F66, counter=1001)))
        assert outcome.result is ActivationResult.SUCCESS
        assert outcome.originator_counter == 1001
        assert outcome.message_counter == 2000
        assert outcome.alert_code == 0x8F66
        assert outcome.source is OutcomeSource.ALERT
        assert outcome.message_code == 0x00CA
        assert outcome.occurred_at == datetime(2030, 1, 15, 9, tzinfo=UTC)
        assert outcome.firmware_version == FirmwareVersion.parse("0123ABCE")

    @pytest.mark.parametrize("code", [1, 2, 3])
    def test_failure(self, code: int) -> None:
        content = alert_content(0x8F67, outcome=execution(code))
        outcome = decode_outcome(alert(content))
        assert outcome.result is ActivationResult.from_response_code(code)
        assert outcome.alert_code == 0x8F67

    def test_counter_up_to_two_to_the_64(self) -> None:
        top = (1 << 64) - 1
        assert decode_outcome(alert(alert_content(counter=top))).originator_counter == top

    def test_header_date_time_does_not_replace_execution_time(self) -> None:
        outcome = decode_outcome(alert(alert_content(), date_time=STAMP))
        assert outcome.occurred_at == datetime(2030, 1, 15, 9, tzinfo=UTC)

    def test_success_code_with_failure_result(self) -> None:
        content = alert_content(0x8F66, outcome=execution(2))
        assert_error(
            alert(content),
            GbcsDerError,
            CONTENT_OFFSET + 28,
            "alertCode 0x8F66 (success) carries responseCode 2 (hash_mismatch)",
        )

    def test_failure_code_with_success_result(self) -> None:
        content = alert_content(0x8F67, outcome=execution(0))
        assert_error(
            alert(content),
            GbcsDerError,
            CONTENT_OFFSET + 28,
            "0x8F67 (failure) carries responseCode 0",
        )

    @pytest.mark.parametrize(("code", "shown"), [(0x8F65, "0x8F65"), (0, "0x0000"), (-5, "-5")])
    def test_unknown_alert_code(self, code: int, shown: str) -> None:
        assert_error(
            alert(alert_content(code)),
            GbcsMessageCodeError,
            CONTENT_OFFSET + 2,
            f"alertCode {shown} is not a future-dated activation outcome",
        )

    @pytest.mark.parametrize("counter", [-1, 1 << 64])
    def test_counter_out_of_range(self, counter: int) -> None:
        assert_error(
            alert(alert_content(counter=counter)),
            GbcsDerError,
            CONTENT_OFFSET + 24,
            f"originatorCounter {counter} is not in 0..2^64-1",
        )

    def test_bad_execution_time(self) -> None:
        content = alert_content(executed=b"20301301090000Z")
        assert_error(alert(content), GbcsDerError, CONTENT_OFFSET + 9, "not a valid date")

    def test_content_not_a_sequence(self) -> None:
        assert_error(alert(b"\x05\x00"), GbcsTagError, CONTENT_OFFSET, "found NULL (0x05)")

    def test_bytes_after_the_alert_sequence(self) -> None:
        content = alert_content() + b"\x05\x00"
        assert_error(
            alert(content), GbcsDerError, CONTENT_OFFSET + len(content) - 2, "after the CS06 alert"
        )

    def test_element_after_the_outcome(self) -> None:
        inner = encode_integer(0x8F66) + encode_tlv(0x18, b"20300115090000Z")
        inner += encode_integer(1) + execution(0) + b"\x05\x00"
        content = encode_tlv(0x30, inner)
        assert_error(
            alert(content), GbcsDerError, CONTENT_OFFSET + len(content) - 2, "outcome SEQUENCE"
        )

    def test_response_code_for_an_alert_is_refused(self) -> None:
        data = message(alert_content(), cra=CraFlag.ALERT, code=0x0012)
        assert_error(data, GbcsMessageCodeError, 31, "expected 0x00CA")


class TestNotAnOutcome:
    """Commands and messages outside CS06 are refused at the field that says so."""

    def test_command_is_refused_at_the_cra_flag(self) -> None:
        assert_error(message(b"", cra=CraFlag.COMMAND), GbcsMessageCodeError, 2, "01 (command)")

    def test_general_ciphering_is_a_tag_error(self) -> None:
        assert_error(b"\xdd" + message(b"\x05\x00"), GbcsTagError, 0, "General Ciphering")

    def test_outcome_from_a_decoded_command(self) -> None:
        parsed = decode_message(message(b"", cra=CraFlag.COMMAND))
        with pytest.raises(GbcsMessageCodeError, match="not a command") as caught:
            outcome_from_message(parsed)
        assert caught.value.offset == 2

    def test_outcome_from_a_decoded_message_with_another_code(self) -> None:
        parsed = decode_message(message(b"\x05\x00", code=0x0013, date_time=STAMP))
        with pytest.raises(GbcsMessageCodeError, match="expected 0x0012") as caught:
            outcome_from_message(parsed)
        assert caught.value.offset == CONTENT_OFFSET_WITH_DATE_TIME - 3
