"""Properties: encode→decode round-trips, and no input makes the decoder fail any other way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from chfw.core.domain import (
    ActivationOutcome,
    ActivationResult,
    DeviceId,
    Eui64,
    FirmwareVersion,
    OutcomeSource,
)
from chfw.core.gbcs import (
    CraFlag,
    decode_message,
    decode_outcome,
    encode_message,
    encode_outcome,
    verify_device_signature,
)
from chfw.core.gbcs.decode import CS06_MESSAGE_CODES, _common_response, outcome_from_message
from chfw.core.gbcs.message import parse_message
from chfw.exceptions import GbcsDecodeError, GbcsTruncatedError

MAX_COUNTER = (1 << 64) - 1

device_ids = st.binary(min_size=8, max_size=8).map(DeviceId)
titles = st.binary(min_size=8, max_size=8).map(Eui64)
counters = st.integers(min_value=0, max_value=MAX_COUNTER)
versions = st.binary(min_size=1, max_size=16).map(FirmwareVersion)
zones = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(minutes=-330))])
moments = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=zones
)
header_times = moments.map(lambda m: m.replace(microsecond=m.microsecond // 10_000 * 10_000))
execution_times = moments.map(lambda m: m.replace(microsecond=0))
failures = st.sampled_from(
    [r for r in ActivationResult if r not in (ActivationResult.SUCCESS, ActivationResult.ACCEPTED)]
)


@st.composite
def outcomes(draw: st.DrawFn) -> ActivationOutcome:
    """Any outcome a CS06 response or alert can carry."""
    device, recipient = draw(device_ids), draw(titles)
    if draw(st.booleans()):
        result = draw(st.sampled_from(ActivationResult))
        counter = draw(counters)
        return ActivationOutcome(
            device_id=device,
            originator_counter=counter,
            result=result,
            firmware_version=None if result is ActivationResult.ACCEPTED else draw(versions),
            source=OutcomeSource.RESPONSE,
            message_code=0x0012,
            message_counter=counter,
            recipient=recipient,
            occurred_at=draw(st.none() | header_times),
        )
    success = draw(st.booleans())
    return ActivationOutcome(
        device_id=device,
        originator_counter=draw(counters),
        result=ActivationResult.SUCCESS if success else draw(failures),
        firmware_version=draw(versions),
        source=OutcomeSource.ALERT,
        message_code=0x00CA,
        message_counter=draw(counters),
        recipient=recipient,
        occurred_at=draw(execution_times),
        alert_code=0x8F66 if success else 0x8F67,
    )


def refusal(data: bytes | str, decode: Callable[[bytes | str], object]) -> GbcsDecodeError | None:
    """The GbcsDecodeError ``decode`` raises, or None when it decodes; anything else escapes."""
    try:
        decode(data)
    except GbcsDecodeError as error:
        return error
    return None


def flipped(valid: bytes, data: st.DataObject) -> bytes:
    """``valid`` with one to three of its bytes changed."""
    mutated = bytearray(valid)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        position = data.draw(st.integers(min_value=0, max_value=len(mutated) - 1))
        mutated[position] ^= data.draw(st.integers(min_value=1, max_value=255))
    return bytes(mutated)


def decodes_or_refuses(data: bytes) -> None:
    """Decode; a refusal must be a GbcsDecodeError pointing inside the input."""
    for decode in (decode_outcome, decode_message):
        error = refusal(data, decode)
        assert error is None or 0 <= error.offset <= len(data)


class TestRoundTrip:
    """What the encoder writes, the decoder reads back unchanged."""

    @given(outcomes())
    def test_outcomes(self, outcome: ActivationOutcome) -> None:
        data = encode_outcome(outcome)
        assert decode_outcome(data) == outcome
        assert decode_outcome(data.hex(" ")) == outcome

    @given(
        cra=st.sampled_from(CraFlag),
        counter=counters,
        originator=titles,
        recipient=titles,
        code=st.integers(min_value=0, max_value=0xFFFF),
        content=st.binary(max_size=300),
        date_time=st.none() | header_times,
    )
    def test_messages(
        self,
        cra: CraFlag,
        counter: int,
        originator: Eui64,
        recipient: Eui64,
        code: int,
        content: bytes,
        date_time: datetime | None,
    ) -> None:
        data = encode_message(
            cra=cra,
            counter=counter,
            originator=originator,
            recipient=recipient,
            message_code=code,
            content=content,
            date_time=date_time,
        )
        parsed = decode_message(data)
        assert (parsed.cra, parsed.transaction_counter, parsed.message_code) == (cra, counter, code)
        assert (parsed.originator, parsed.recipient) == (originator, recipient)
        assert parsed.date_time == date_time
        assert parsed.content == data[parsed.content_offset : parsed.content_offset + len(content)]
        assert parsed.content == content
        assert parsed.signed_bytes == data[1:-1]
        assert parsed.signature is None

    @settings(max_examples=25)
    @given(outcomes())
    def test_signed_outcomes_verify(
        self, device_key: ec.EllipticCurvePrivateKey, outcome: ActivationOutcome
    ) -> None:
        data = encode_outcome(outcome, signing_key=device_key)
        assert decode_outcome(data) == outcome
        verify_device_signature(decode_message(data), device_key.public_key())


class TestRobustness:
    """Random and mutated input raises GbcsDecodeError or decodes; never anything else."""

    @given(st.binary(max_size=200))
    def test_random_bytes(self, data: bytes) -> None:
        decodes_or_refuses(data)

    @given(outcomes(), st.binary(max_size=80), st.data())
    def test_valid_prefix_then_noise(
        self, outcome: ActivationOutcome, noise: bytes, data: st.DataObject
    ) -> None:
        valid = encode_outcome(outcome)
        cut = data.draw(st.integers(min_value=0, max_value=len(valid)))
        decodes_or_refuses(valid[:cut] + noise)

    @given(outcomes(), st.data())
    def test_byte_flips(self, outcome: ActivationOutcome, data: st.DataObject) -> None:
        decodes_or_refuses(flipped(encode_outcome(outcome), data))

    @given(outcomes(), st.data())
    def test_insertions_and_deletions(
        self, outcome: ActivationOutcome, data: st.DataObject
    ) -> None:
        valid = encode_outcome(outcome)
        position = data.draw(st.integers(min_value=0, max_value=len(valid) - 1))
        if data.draw(st.booleans()):
            extra = data.draw(st.binary(min_size=1, max_size=3))
            decodes_or_refuses(valid[:position] + extra + valid[position:])
        else:
            decodes_or_refuses(valid[:position] + valid[position + 1 :])

    @given(outcomes())
    def test_every_strict_prefix_is_truncation(self, outcome: ActivationOutcome) -> None:
        valid = encode_outcome(outcome)
        for cut in range(len(valid)):
            error = refusal(valid[:cut], decode_outcome)
            assert isinstance(error, GbcsTruncatedError), (cut, error)
            assert error.offset <= cut

    @given(st.text(max_size=120))
    def test_random_text(self, text: str) -> None:
        error = refusal(text, decode_outcome)
        assert error is None or error.offset >= 0

    @given(st.lists(st.sampled_from("0123456789abcdefABCDEF \n"), max_size=200).map("".join))
    def test_random_hex_text(self, text: str) -> None:
        error = refusal(text, decode_outcome)
        assert error is None or 0 <= error.offset <= len(text) // 2 + 1


def read_carefully(data: bytes) -> ActivationOutcome:
    """The general decoder alone: every field through DerReader, never the common-shape path."""
    return outcome_from_message(parse_message(data, allowed=CS06_MESSAGE_CODES))


def same_answer(data: bytes) -> None:
    """decode_outcome answers exactly as the general decoder: the same outcome, or the same
    refusal (class, offset and message)."""
    try:
        expected: ActivationOutcome | str = read_carefully(data)
    except GbcsDecodeError as error:
        expected = f"{type(error).__name__}@{error.offset}: {error}"
    try:
        found: ActivationOutcome | str = decode_outcome(data)
    except GbcsDecodeError as error:
        found = f"{type(error).__name__}@{error.offset}: {error}"
    assert found == expected


class TestCommonShapeReader:
    """decode_outcome reads the common CS06 response shape by fixed offsets; whatever it
    reads that way must be what the general decoder reads, byte for byte."""

    @given(outcomes(), st.booleans())
    def test_takes_every_response_and_agrees(
        self, outcome: ActivationOutcome, signed: bool
    ) -> None:
        data = encode_outcome(outcome)
        if signed:  # a signature's presence, not its value, is what the reader looks at
            data = data[:-1] + bytes([64]) + bytes(range(64))
        common = _common_response(data)
        if outcome.source is OutcomeSource.RESPONSE:
            assert common == read_carefully(data)
            assert common is not None
            assert common.firmware_version == outcome.firmware_version
        else:
            assert common is None  # alerts: the general decoder only
        same_answer(data)

    @given(outcomes(), st.data())
    def test_byte_flips(self, outcome: ActivationOutcome, data: st.DataObject) -> None:
        same_answer(flipped(encode_outcome(outcome), data))

    @given(outcomes(), st.data())
    def test_insertions_deletions_and_cuts(
        self, outcome: ActivationOutcome, data: st.DataObject
    ) -> None:
        valid = encode_outcome(outcome)
        position = data.draw(st.integers(min_value=0, max_value=len(valid)))
        extra = data.draw(st.binary(max_size=3))
        dropped = data.draw(st.integers(min_value=0, max_value=2))
        same_answer(valid[:position] + extra + valid[position + dropped :])

    @given(st.binary(min_size=30, max_size=120))
    def test_random_bytes_behind_a_response_header(self, tail: bytes) -> None:
        header = bytes.fromhex("DF0902") + bytes(8) + bytes.fromhex("08") + bytes(8)
        same_answer(header + bytes.fromhex("08") + bytes(8) + tail)

    def test_every_single_byte_change_of_each_shape(self) -> None:
        # Exhaustive where it is cheap: each byte of each shape the reader takes, set to
        # each of the 256 values, dropped, and with a byte inserted before it.
        device, recipient = DeviceId(bytes(range(1, 9))), Eui64(bytes(range(9, 17)))
        shapes = [
            ActivationOutcome(
                device_id=device,
                originator_counter=5,
                result=result,
                firmware_version=version,
                source=OutcomeSource.RESPONSE,
                message_code=0x0012,
                message_counter=5,
                recipient=recipient,
                occurred_at=at,
            )
            for result, version in [
                (ActivationResult.SUCCESS, FirmwareVersion(bytes.fromhex("02010300"))),
                (ActivationResult.HASH_MISMATCH, FirmwareVersion(b"\x07")),
                (ActivationResult.ACCEPTED, None),
            ]
            for at in (None, datetime(2026, 11, 26, 12, 30, 5, tzinfo=UTC))
        ]
        for outcome in shapes:
            valid = encode_outcome(outcome)
            assert _common_response(valid) == outcome
            for data in (valid, valid[:-1] + bytes([64]) + bytes(64)):
                for i in range(len(data) + 1):
                    for value in range(256):
                        same_answer(data[:i] + bytes([value]) + data[i + 1 :])
                    same_answer(data[:i] + bytes([0x40]) + data[i:])
                    same_answer(data[:i] + data[i + 1 :])
