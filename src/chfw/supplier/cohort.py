"""A pilot's cohort file: the CH IDs to follow, read and checked line by line (pure).

Two shapes are accepted, told apart by the first line that is not blank or
a ``#`` comment:

- a CSV file with a header naming a ``device_id`` column (also spelt
  ``Device ID`` or ``DeviceID``) and, optionally, a ``label`` column (kept by
  ``chfw receiver hubs import``); other columns are ignored, so a planning
  tool's export can be used as it is;
- one Device ID per line (blank lines and ``#`` comments skipped).

Device IDs may be written in any form :meth:`DeviceId.parse` takes
(``00-1D-A1-00-00-00-00-01``, plain or colon-separated hex). A line that is
not a Device ID is rejected with its line number and the reason, and the
others are kept; an ID given twice is counted once.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from chfw.core.domain import DeviceId
from chfw.exceptions import InvalidValueError

_COLUMN_SPELLINGS = re.compile(r"[\s_\-\ufeff]")  # \ufeff: a BOM from spreadsheets


class CohortFileError(InvalidValueError):
    """A cohort file cannot be read as a whole (a CSV header without a device_id column)."""


@dataclass(frozen=True, slots=True)
class CohortReject:
    """One line that does not name a CH, and why."""

    line: int
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class Cohort:
    """The distinct CHs of a cohort file, in file order, and the lines that were rejected."""

    device_ids: tuple[DeviceId, ...]
    rejects: tuple[CohortReject, ...]
    duplicates: int
    labels: dict[DeviceId, str] = field(default_factory=dict)  # from a 'label' column


def _is_header_cell(cell: str, name: str = "deviceid") -> bool:
    return _COLUMN_SPELLINGS.sub("", cell).lower() == name


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        yield number, line.rstrip("\r\n")


def _candidates(lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, ID text, label or '') for every line or CSV row that should name a CH."""
    numbered = _numbered(lines)
    for number, line in numbered:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = next(csv.reader([line]))
        if "," not in line and not _is_header_cell(stripped):
            yield number, stripped, ""  # one ID per line
            for later, text in numbered:
                text = text.strip()
                if text and not text.startswith("#"):
                    yield later, text, ""
            return
        columns = [i for i, cell in enumerate(header) if _is_header_cell(cell)]
        if not columns:
            raise CohortFileError(
                f"line {number}: the CSV header has no device_id column "
                f"(columns: {', '.join(cell.strip() for cell in header)})"
            )
        column = columns[0]
        labels = [i for i, cell in enumerate(header) if _is_header_cell(cell, "label")]
        rows = csv.reader(text for _, text in numbered)
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            label = row[labels[0]].strip() if labels and labels[0] < len(row) else ""
            # line_num counts the lines the reader consumed: a quoted cell may span several.
            yield number + rows.line_num, row[column].strip() if column < len(row) else "", label
        return


def read_cohort(lines: Iterable[str]) -> Cohort:
    """Parse a cohort file's lines; raises CohortFileError only for an unusable header."""
    seen: set[DeviceId] = set()
    ids: list[DeviceId] = []
    rejects: list[CohortReject] = []
    duplicates = 0
    labels: dict[DeviceId, str] = {}
    for number, text, label in _candidates(lines):
        if not text:
            rejects.append(CohortReject(number, text, "no device_id value"))
            continue
        try:
            device = DeviceId.parse(text)
        except InvalidValueError as exc:
            rejects.append(CohortReject(number, text, str(exc)))
            continue
        if device in seen:
            duplicates += 1
            continue
        seen.add(device)
        ids.append(device)
        if label:
            labels[device] = label
    return Cohort(tuple(ids), tuple(rejects), duplicates, labels)
