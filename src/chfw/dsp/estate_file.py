"""Estate files: which CHs exist, in which CSP region, with which meter points and suppliers.

Pure parsing (text in, records out), streaming so a file of millions of rows
never sits in memory. Each row is validated on its own with the domain types;
a bad row is reported with where it is and why, and the rest carry on.
The formats are described in docs/estate-format.md.
"""

from __future__ import annotations

import csv
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, TextIO

from chfw.core.domain import DeviceId, Fuel, MeterPoint, UserId
from chfw.exceptions import EstateFileError, InvalidValueError

REQUIRED_COLUMNS = ("device_id", "csp_region")
METER_POINT_COLUMNS = ("mpxn", "fuel", "import_supplier", "export_supplier", "gas_supplier")
COLUMNS = REQUIRED_COLUMNS + METER_POINT_COLUMNS
_SUPPLIER_COLUMNS = METER_POINT_COLUMNS[2:]
_HUB_FIELDS = ("device_id", "csp_region", "meter_points")
FORMATS = ("csv", "json")


class CspRegion(enum.Enum):
    """The three CSP regions of GB; each CH is served by exactly one."""

    NORTH = "north"
    CENTRAL = "central"
    SOUTH = "south"

    @classmethod
    def parse(cls, text: str) -> CspRegion:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidValueError(
                f"CSP region {text!r} is not one of {', '.join(r.value for r in cls)}"
            ) from None


@dataclass(frozen=True, slots=True)
class EstateRecord:
    """One meter point on one CH; ``meter_point`` is None for a CH with no meter yet."""

    device_id: DeviceId
    csp_region: CspRegion
    meter_point: MeterPoint | None


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row not imported: ``row`` counts records from 1, ``where`` finds it in the file."""

    row: int
    where: str
    reason: str


EstateItem = EstateRecord | RejectedRow


def format_for(filename: str, explicit: str | None = None) -> str:
    """``csv`` or ``json``: the explicit choice, else the file's extension."""
    choice = (explicit or PurePath(filename).suffix.lstrip(".")).lower()
    if choice not in FORMATS:
        raise EstateFileError(
            f"cannot tell the format of {filename!r}: name it .csv or .json, or give --format"
        )
    return choice


def parse(stream: TextIO, fmt: str) -> Iterator[EstateItem]:
    """Records and rejected rows from an estate file, in file order."""
    if fmt == "csv":
        return parse_csv(stream)
    if fmt == "json":
        return parse_json(stream)
    raise EstateFileError(f"unknown estate file format {fmt!r} (use csv or json)")


# -- one record -------------------------------------------------------------------------------


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValueError(f"{name} must be text, got {json.dumps(value)}")
    return value.strip() or None


def _required(fields: Mapping[str, Any], name: str) -> str:
    value = _text(fields, name)
    if value is None:
        raise InvalidValueError(f"{name} is missing")
    return value


def _meter_point(fields: Mapping[str, Any]) -> MeterPoint | None:
    mpxn = _text(fields, "mpxn")
    fuel_text = _text(fields, "fuel")
    suppliers = {name: _text(fields, name) for name in _SUPPLIER_COLUMNS}
    if mpxn is None:
        given = [name for name, value in [("fuel", fuel_text), *suppliers.items()] if value]
        if given:
            raise InvalidValueError(f"{', '.join(given)} given but mpxn is empty")
        return None
    if fuel_text is None:
        raise InvalidValueError(f"fuel is missing for {mpxn} (electricity or gas)")
    try:
        fuel = Fuel(fuel_text.lower())
    except ValueError:
        raise InvalidValueError(f"fuel {fuel_text!r} is not electricity or gas") from None
    users: dict[str, UserId | None] = {}
    for name, value in suppliers.items():
        try:
            users[name] = None if value is None else UserId.parse(value)
        except InvalidValueError as exc:
            raise InvalidValueError(f"{name}: {exc}") from None
    return MeterPoint(mpxn, fuel, **users)


def _hub_fields(fields: Mapping[str, Any]) -> tuple[DeviceId, CspRegion]:
    return DeviceId.parse(_required(fields, "device_id")), CspRegion.parse(
        _required(fields, "csp_region")
    )


def record(fields: Mapping[str, Any]) -> EstateRecord:
    """Validate one flat record (CSV row or JSON object); InvalidValueError says what is wrong."""
    device_id, region = _hub_fields(fields)
    return EstateRecord(device_id, region, _meter_point(fields))


# -- CSV ----------------------------------------------------------------------------------------


def parse_csv(stream: TextIO) -> Iterator[EstateItem]:
    """CSV with a header row naming the columns (any order, case-insensitive)."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise EstateFileError("the CSV file is empty (expected a header row)") from None
    except csv.Error as exc:
        raise EstateFileError(f"CSV header: {exc}") from None
    names = [name.strip().lower().lstrip("\ufeff") for name in header]
    unknown = [name for name in names if name not in COLUMNS]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if unknown or missing or duplicated:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if duplicated:
            problems.append(f"repeated column(s) {', '.join(duplicated)}")
        raise EstateFileError(
            f"CSV header: {'; '.join(problems)} (columns are: {', '.join(COLUMNS)})"
        )
    count = 0
    while True:
        where = f"line {reader.line_num + 1}"  # where the record starts (it may span lines)
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            count += 1
            yield RejectedRow(count, where, f"not valid CSV: {exc}")
            continue
        if not values or all(not value.strip() for value in values):
            continue
        count += 1
        if len(values) != len(names):
            yield RejectedRow(
                count, where, f"has {len(values)} fields, the header has {len(names)}"
            )
            continue
        try:
            yield record(dict(zip(names, values, strict=True)))
        except InvalidValueError as exc:
            yield RejectedRow(count, where, str(exc))


# -- JSON ---------------------------------------------------------------------------------------


class _JsonReader:
    """Reads one JSON value at a time from a stream, for a document too big to load whole.

    Only the outer containers are walked by hand; each record is decoded by
    the json module, so every value is checked by the standard parser.
    """

    CHUNK = 1 << 16
    MAX_VALUE = 16 << 20  # one record larger than this is not an estate record

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.lines_before = 0  # newlines in text already discarded from buf
        self.decoder = json.JSONDecoder()

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.stream.read(self.CHUNK)
        if not data:
            self.eof = True
            return False
        self.lines_before += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def line(self, pos: int | None = None) -> int:
        at = self.pos if pos is None else pos
        return self.lines_before + self.buf.count("\n", 0, at) + 1

    def error(self, message: str, pos: int | None = None) -> EstateFileError:
        return EstateFileError(f"JSON line {self.line(pos)}: {message}")

    def peek(self) -> str:
        """The next non-blank character, not consumed; '' at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def take(self, expected: str) -> None:
        found = self.peek()
        if found != expected:
            shown = repr(found) if found else "the end of the file"
            raise self.error(f"expected {expected!r}, found {shown}")
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > self.MAX_VALUE:
                    raise self.error(
                        f"a value is larger than {self.MAX_VALUE} characters"
                    ) from None
                if self._fill():
                    continue
                raise self.error(exc.msg, exc.pos) from None
            # A number that ends where the buffer ends may continue in the next chunk.
            if end == len(self.buf) and self._fill():
                continue
            self.pos = end
            return value

    def items(self) -> Iterator[tuple[int, Any]]:
        """The elements of the array that starts here, with their index."""
        self.take("[")
        if self.peek() == "]":
            self.pos += 1
            return
        index = 0
        while True:
            yield index, self.value()
            index += 1
            found = self.peek()
            if found == "]":
                self.pos += 1
                return
            if found != ",":
                shown = repr(found) if found else "the end of the file"
                raise self.error(f"expected ',' or ']' in an array, found {shown}")
            self.pos += 1


def parse_json(stream: TextIO) -> Iterator[EstateItem]:
    """A JSON array of records, or an object ``{"hubs": [...]}``; see docs/estate-format.md.

    Any element with a ``meter_points`` key is a hub with its meter points
    nested; any other is a flat record, as in the CSV.
    """
    reader = _JsonReader(stream)
    counter = _Counter()
    start = reader.peek()
    if start == "[":
        for index, element in reader.items():
            yield from _element(element, f"[{index}]", counter)
    elif start == "{":
        reader.take("{")
        key = reader.value() if reader.peek() == '"' else None
        if key != "hubs":
            shown = "nothing" if key is None else json.dumps(key)
            raise reader.error(f'expected the key "hubs" (and only it), found {shown}')
        reader.take(":")
        if reader.peek() != "[":
            raise reader.error('"hubs" must be an array')
        for index, element in reader.items():
            yield from _element(element, f"hubs[{index}]", counter)
        if reader.peek() == ",":
            raise reader.error('only "hubs" may be given at the top level')
        reader.take("}")
    elif start == "":
        raise EstateFileError("the JSON file is empty")
    else:
        raise reader.error('expected an array of records or an object {"hubs": [...]}')
    if reader.peek() != "":
        raise reader.error("unexpected data after the end of the document")


class _Counter:
    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def _unknown(fields: Mapping[str, Any], allowed: tuple[str, ...]) -> str | None:
    extra = sorted(set(fields) - set(allowed))
    if not extra:
        return None
    return f"unknown field(s) {', '.join(extra)} (allowed: {', '.join(allowed)})"


def _element(element: Any, where: str, counter: _Counter) -> Iterator[EstateItem]:
    if isinstance(element, dict) and "meter_points" in element:
        yield from _hub(element, where, counter)
        return
    row = counter.next()
    if not isinstance(element, dict):
        yield RejectedRow(row, where, "not a JSON object")
        return
    problem = _unknown(element, COLUMNS)
    if problem:
        yield RejectedRow(row, where, problem)
        return
    try:
        accepted = record(element)
    except InvalidValueError as exc:
        yield RejectedRow(row, where, str(exc))
        return
    yield accepted


def _hub(element: dict[str, Any], where: str, counter: _Counter) -> Iterator[EstateItem]:
    points = element["meter_points"]
    try:
        problem = _unknown(element, _HUB_FIELDS)
        if problem:
            raise InvalidValueError(problem)
        if not isinstance(points, list):
            raise InvalidValueError("meter_points must be an array")
        device_id, region = _hub_fields(element)
    except InvalidValueError as exc:
        yield RejectedRow(counter.next(), where, str(exc))
        return
    if not points:
        counter.next()
        yield EstateRecord(device_id, region, None)
        return
    for index, point in enumerate(points):
        point_where = f"{where}.meter_points[{index}]"
        row = counter.next()
        if not isinstance(point, dict):
            yield RejectedRow(row, point_where, "not a JSON object")
            continue
        problem = _unknown(point, METER_POINT_COLUMNS)
        if problem:
            yield RejectedRow(row, point_where, problem)
            continue
        try:
            meter_point = _meter_point(point)
        except InvalidValueError as exc:
            yield RejectedRow(row, point_where, str(exc))
            continue
        if meter_point is None:
            yield RejectedRow(row, point_where, "mpxn is missing")
            continue
        yield EstateRecord(device_id, region, meter_point)
