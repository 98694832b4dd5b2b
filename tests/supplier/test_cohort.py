"""Cohort files: a CSV with a device_id column or one ID per line; bad lines reported."""

from __future__ import annotations

import pytest

from chfw.core.domain import DeviceId
from chfw.supplier.cohort import CohortFileError, read_cohort

A = DeviceId.parse("00-1D-A1-00-00-00-00-01")
B = DeviceId.parse("00-1D-A1-00-00-00-00-02")


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


class TestCsv:
    """A header names the column; other columns are ignored."""

    def test_device_id_column_among_others(self) -> None:
        cohort = read_cohort(lines("mpan,device_id,region\n123,00-1D-A1-00-00-00-00-01,north\n"))
        assert cohort.device_ids == (A,)
        assert cohort.rejects == ()

    @pytest.mark.parametrize("header", ["device_id", "Device ID", "DeviceID", "\ufeffdevice_id"])
    def test_header_spellings(self, header: str) -> None:
        cohort = read_cohort(lines(f"{header}\n001DA10000000001\n"))
        assert cohort.device_ids == (A,)

    def test_rejects_carry_line_numbers_and_reasons(self) -> None:
        text = (
            "name,device_id\n"
            "a,00-1D-A1-00-00-00-00-01\n"
            "b,00-1D-A1\n"
            "\n"
            "c\n"
            'd,"00-1D-A1-00-00-00-00-02"\n'
        )
        cohort = read_cohort(lines(text))
        assert cohort.device_ids == (A, B)
        assert [(r.line, r.text) for r in cohort.rejects] == [(3, "00-1D-A1"), (5, "")]
        assert "16 hex digits" in cohort.rejects[0].reason
        assert cohort.rejects[1].reason == "no device_id value"

    def test_header_without_the_column(self) -> None:
        with pytest.raises(CohortFileError, match=r"line 2: .*no device_id column.*mpan, region"):
            read_cohort(lines("# pilot cohort\nmpan,region\n1,north\n"))


class TestOnePerLine:
    """Plain lists: blank lines and comments skipped, any Device ID spelling."""

    def test_ids_in_file_order_without_duplicates(self) -> None:
        text = "# cohort\n00:1D:A1:00:00:00:00:02\n\n001da10000000001\n00-1D-A1-00-00-00-00-02\n"
        cohort = read_cohort(lines(text))
        assert cohort.device_ids == (B, A)
        assert cohort.duplicates == 1
        assert cohort.rejects == ()

    def test_bad_lines_are_rejected_not_fatal(self) -> None:
        cohort = read_cohort(lines("00-1D-A1-00-00-00-00-01\nnot-an-id\n  # later comment\nAB\n"))
        assert cohort.device_ids == (A,)
        assert [(r.line, r.text) for r in cohort.rejects] == [(2, "not-an-id"), (4, "AB")]

    def test_empty_file(self) -> None:
        cohort = read_cohort([])
        assert (cohort.device_ids, cohort.rejects, cohort.duplicates) == ((), (), 0)
