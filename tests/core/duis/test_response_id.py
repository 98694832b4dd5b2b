"""ResponseID values: validated on construction, printed and parsed in the DUIS form."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chfw.core.domain import DeviceId, UserId
from chfw.core.duis import ResponseId
from chfw.exceptions import InvalidValueError
from tests.core.duis.samples import DCC_USER, DEVICE, counters, device_ids, user_ids

# The ResponseIDType facts of docs/domain.md, "The alert document", as a test-side oracle:
# EUI:EUI:counter, EUIs as eight hex pairs joined by "-", the counter a decimal without leading
# zeros.
_DUIS_FORM = re.compile(
    r"[0-9A-F]{2}(-[0-9A-F]{2}){7}:[0-9A-F]{2}(-[0-9A-F]{2}){7}:(0|[1-9][0-9]*)"
)


class TestConstruction:
    """A ResponseId refuses counters outside 0..2^64-1 and identifiers of the wrong kind."""

    @pytest.mark.parametrize("counter", [0, 1, 2**64 - 1])
    def test_accepts_counter_bounds(self, counter: int) -> None:
        assert ResponseId(DCC_USER, DEVICE, counter).counter == counter

    @pytest.mark.parametrize("counter", [-1, 2**64, 10**20])
    def test_rejects_counter_out_of_range(self, counter: int) -> None:
        with pytest.raises(InvalidValueError, match=r"outside 0\.\.2\^64-1"):
            ResponseId(DCC_USER, DEVICE, counter)

    @pytest.mark.parametrize("counter", [True, 1.0, "1"])
    def test_rejects_non_int_counter(self, counter: object) -> None:
        with pytest.raises(InvalidValueError, match="counter must be an int"):
            ResponseId(DCC_USER, DEVICE, counter)  # type: ignore[arg-type]

    def test_rejects_device_where_user_belongs(self) -> None:
        with pytest.raises(InvalidValueError, match="must be a UserId"):
            ResponseId(DeviceId(DCC_USER.octets), DEVICE, 1)  # type: ignore[arg-type]

    def test_rejects_user_where_device_belongs(self) -> None:
        with pytest.raises(InvalidValueError, match="must be a DeviceId"):
            ResponseId(DCC_USER, UserId(DEVICE.octets), 1)  # type: ignore[arg-type]

    def test_rejects_text_identifiers(self) -> None:
        with pytest.raises(InvalidValueError):
            ResponseId(str(DCC_USER), DEVICE, 1)  # type: ignore[arg-type]

    def test_equality_and_hash_follow_the_fields(self) -> None:
        a = ResponseId(DCC_USER, DEVICE, 7)
        assert a == ResponseId(DCC_USER, DEVICE, 7)
        assert hash(a) == hash(ResponseId(DCC_USER, DEVICE, 7))
        assert a != ResponseId(DCC_USER, DEVICE, 8)

    def test_is_immutable(self) -> None:
        response_id = ResponseId(DCC_USER, DEVICE, 7)
        with pytest.raises(AttributeError):
            response_id.counter = 8  # type: ignore[misc]


class TestText:
    """str() gives the DUIS form and parse() reads it back."""

    def test_worked_example(self) -> None:
        text = str(ResponseId(DCC_USER, DEVICE, 1234))
        assert text == "90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:1234"

    @given(user_ids, device_ids, counters)
    def test_round_trips_in_duis_form(self, user: UserId, device: DeviceId, counter: int) -> None:
        response_id = ResponseId(user, device, counter)
        text = str(response_id)
        assert _DUIS_FORM.fullmatch(text)
        assert text.split(":") == [str(user), str(device), str(counter)]
        assert ResponseId.parse(text) == response_id

    def test_parse_accepts_lower_case_hex(self) -> None:
        parsed = ResponseId.parse("90-b3-d5-1f-30-00-00-02:00-1d-a1-00-00-00-00-42:5")
        assert parsed == ResponseId(DCC_USER, DEVICE, 5)

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42",
            "90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:",
            "90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:01",
            "90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:-1",
            "90B3D51F30000002:001DA10000000042:1",
            "90-B3-D5-1F-30-00-00:00-1D-A1-00-00-00-00-42:1",
            " 90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:1",
            "90-B3-D5-1F-30-00-00-02:00-1D-A1-00-00-00-00-42:1:2",
        ],
    )
    def test_parse_rejects_malformed(self, text: str) -> None:
        with pytest.raises(InvalidValueError, match="is not EUI:EUI:counter"):
            ResponseId.parse(text)

    @given(st.integers(min_value=2**64, max_value=10**20 - 1))
    def test_parse_rejects_counter_above_range(self, counter: int) -> None:
        with pytest.raises(InvalidValueError, match="outside"):
            ResponseId.parse(f"{DCC_USER}:{DEVICE}:{counter}")

    def test_parse_rejects_non_text(self) -> None:
        with pytest.raises(InvalidValueError):
            ResponseId.parse(b"x")  # type: ignore[arg-type]
