"""Estate files: CSV and JSON parsed row by row, streaming, with reasons for every rejection."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from chfw.core.domain import DeviceId, Fuel, MeterPoint, UserId
from chfw.dsp import estate_file
from chfw.dsp.estate_file import CspRegion, EstateRecord, RejectedRow
from chfw.exceptions import EstateFileError

CH = "00-1D-A1-00-00-00-00-42"
IS, ES, GS = "90-B3-D5-1F-30-01-00-00", "90-B3-D5-1F-30-02-00-00", "90-B3-D5-1F-30-03-00-00"
HEADER = "device_id,csp_region,mpxn,fuel,import_supplier,export_supplier,gas_supplier\n"


def csv_items(text: str) -> list[EstateRecord | RejectedRow]:
    return list(estate_file.parse_csv(io.StringIO(text, newline="")))


def json_items(document: Any) -> list[EstateRecord | RejectedRow]:
    text = document if isinstance(document, str) else json.dumps(document)
    return list(estate_file.parse_json(io.StringIO(text)))


def only_reason(items: list[EstateRecord | RejectedRow]) -> str:
    assert len(items) == 1
    assert isinstance(items[0], RejectedRow)
    return items[0].reason


class TestCsvAccepted:
    """Good CSV rows become records built from the domain types."""

    def test_electricity_gas_and_meterless_hub(self) -> None:
        items = csv_items(
            HEADER
            + f"{CH},north,1200012345678,electricity,{IS},{ES},\n"
            + f"{CH},North,1234567,GAS,,,{GS}\n"
            + "001DA10000000043,south,,,,,\n"
        )
        device = DeviceId.parse(CH)
        assert items == [
            EstateRecord(
                device,
                CspRegion.NORTH,
                MeterPoint(
                    "1200012345678",
                    Fuel.ELECTRICITY,
                    import_supplier=UserId.parse(IS),
                    export_supplier=UserId.parse(ES),
                ),
            ),
            EstateRecord(
                device,
                CspRegion.NORTH,
                MeterPoint("1234567", Fuel.GAS, gas_supplier=UserId.parse(GS)),
            ),
            EstateRecord(DeviceId.parse("001DA10000000043"), CspRegion.SOUTH, None),
        ]

    def test_columns_in_any_order_and_optional_ones_left_out(self) -> None:
        items = csv_items("CSP_Region, Device_ID\ncentral,00:1d:a1:00:00:00:00:42\n")
        assert items == [EstateRecord(DeviceId.parse(CH), CspRegion.CENTRAL, None)]

    def test_blank_lines_skipped_and_bom_tolerated(self) -> None:
        items = csv_items("\ufeffdevice_id,csp_region\n\n" + f"{CH},south\n , \n")
        assert [type(item) for item in items] == [EstateRecord]


class TestCsvRejected:
    """Each kind of bad row is rejected with its line and a reason naming the problem."""

    @pytest.mark.parametrize(
        ("row", "fragment"),
        [
            ("00-1D-A1,north,,,,,", "Device ID"),
            (f"{CH},east,,,,,", "CSP region 'east'"),
            (f"{CH},,,,,,", "csp_region is missing"),
            (",north,,,,,", "device_id is missing"),
            (f"{CH},north,120001234567,electricity,{IS},,", "MPAN '120001234567' must be 13"),
            (f"{CH},north,12345,gas,,,{GS}", "MPRN '12345' must be 6 to 10"),
            (f"{CH},north,1200012345678,,{IS},,", "fuel is missing"),
            (f"{CH},north,1200012345678,water,{IS},,", "fuel 'water'"),
            (f"{CH},north,1200012345678,electricity,90-B3,,", "import_supplier"),
            (f"{CH},north,1234567,gas,{IS},,", "cannot have an Import"),
            (f"{CH},north,1200012345678,electricity,,,{GS}", "cannot have a Gas Supplier"),
            (f"{CH},north,,,{IS},,", "import_supplier given but mpxn is empty"),
            (f"{CH},north,,gas,,,", "fuel given but mpxn is empty"),
            (f"{CH},north", "has 2 fields, the header has 7"),
        ],
    )
    def test_bad_row(self, row: str, fragment: str) -> None:
        items = csv_items(HEADER + f"{CH},north,,,,,\n" + row + "\n")
        assert isinstance(items[0], EstateRecord)
        rejected = items[1]
        assert isinstance(rejected, RejectedRow)
        assert fragment in rejected.reason
        assert (rejected.row, rejected.where) == (2, "line 3")

    def test_line_numbers_count_physical_lines(self) -> None:
        items = csv_items('device_id,csp_region\n"not\n a CH",north\n' + "x,north\n")
        assert [(item.row, item.where) for item in items if isinstance(item, RejectedRow)] == [
            (1, "line 2"),
            (2, "line 4"),
        ]

    def test_unparseable_csv_row(self) -> None:
        items = csv_items("device_id,csp_region\n" + "a" * 200_000 + f",north\n{CH},north\n")
        assert isinstance(items[0], RejectedRow)
        assert items[0].reason.startswith("not valid CSV: field larger than field limit")
        assert isinstance(items[1], EstateRecord)

    def test_rows_after_a_bad_row_still_count(self) -> None:
        items = csv_items(HEADER + "bad,north,,,,,\n" + f"{CH},north,,,,,\n")
        assert [type(item) for item in items] == [RejectedRow, EstateRecord]


class TestCsvFileErrors:
    """A header the importer cannot map is an error for the whole file."""

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("", "empty"),
            ("device_id\n", "missing column(s) csp_region"),
            ("device_id,csp_region,mpan\n", "unknown column(s) mpan"),
            ("device_id,csp_region,fuel,fuel\n", "repeated column(s) fuel"),
        ],
    )
    def test_header(self, text: str, fragment: str) -> None:
        with pytest.raises(EstateFileError) as caught:
            csv_items(text)
        assert fragment in str(caught.value)


class TestJsonFlatAndNested:
    """JSON holds flat records, hubs with nested meter points, or both."""

    def test_flat_array(self) -> None:
        items = json_items(
            [
                {
                    "device_id": CH,
                    "csp_region": "north",
                    "mpxn": "1234567",
                    "fuel": "gas",
                    "gas_supplier": GS,
                },
                {"device_id": CH, "csp_region": "north", "import_supplier": None},
            ]
        )
        assert items == [
            EstateRecord(
                DeviceId.parse(CH),
                CspRegion.NORTH,
                MeterPoint("1234567", Fuel.GAS, gas_supplier=UserId.parse(GS)),
            ),
            EstateRecord(DeviceId.parse(CH), CspRegion.NORTH, None),
        ]

    def test_nested_hubs(self) -> None:
        items = json_items(
            {
                "hubs": [
                    {
                        "device_id": CH,
                        "csp_region": "central",
                        "meter_points": [
                            {"mpxn": "1200012345678", "fuel": "electricity", "import_supplier": IS},
                            {"mpxn": "1234567", "fuel": "gas", "gas_supplier": GS},
                        ],
                    },
                    {"device_id": "001DA10000000043", "csp_region": "south", "meter_points": []},
                ]
            }
        )
        assert [type(item) for item in items] == [EstateRecord] * 3
        records = [item for item in items if isinstance(item, EstateRecord)]
        assert [r.meter_point.identifier if r.meter_point else None for r in records] == [
            "1200012345678",
            "1234567",
            None,
        ]
        assert {r.csp_region for r in records[:2]} == {CspRegion.CENTRAL}

    def test_bad_hub_rejects_it_once_and_carries_on(self) -> None:
        items = json_items(
            {
                "hubs": [
                    {"device_id": CH, "csp_region": "west", "meter_points": [{"mpxn": "1234567"}]},
                    {"device_id": CH, "csp_region": "north", "meter_points": []},
                ]
            }
        )
        assert isinstance(items[0], RejectedRow)
        assert (items[0].row, items[0].where) == (1, "hubs[0]")
        assert "CSP region 'west'" in items[0].reason
        assert isinstance(items[1], EstateRecord)

    @pytest.mark.parametrize(
        ("element", "where", "fragment"),
        [
            ("a string", "[0]", "not a JSON object"),
            ({"device_id": CH, "csp_region": "north", "colour": "red"}, "[0]", "colour"),
            ({"device_id": 42, "csp_region": "north"}, "[0]", "device_id must be text"),
            (
                {"device_id": CH, "csp_region": "north", "mpxn": 1234567, "fuel": "gas"},
                "[0]",
                "mpxn must be text",
            ),
            (
                {"device_id": CH, "csp_region": "north", "meter_points": "none"},
                "[0]",
                "meter_points must be an array",
            ),
            (
                {"device_id": CH, "csp_region": "north", "meter_points": [{"fuel": "gas"}]},
                "[0].meter_points[0]",
                "fuel given but mpxn is empty",
            ),
            (
                {"device_id": CH, "csp_region": "north", "meter_points": [{}]},
                "[0].meter_points[0]",
                "mpxn is missing",
            ),
            (
                {"device_id": CH, "csp_region": "north", "meter_points": [[]]},
                "[0].meter_points[0]",
                "not a JSON object",
            ),
            (
                {"device_id": CH, "csp_region": "north", "meter_points": [{"device_id": CH}]},
                "[0].meter_points[0]",
                "unknown field(s) device_id",
            ),
            (
                {"device_id": CH, "csp_region": "north", "x": 1, "meter_points": []},
                "[0]",
                "unknown field(s) x",
            ),
        ],
    )
    def test_bad_element(self, element: Any, where: str, fragment: str) -> None:
        rejected = json_items([element])
        assert len(rejected) == 1
        assert isinstance(rejected[0], RejectedRow)
        assert rejected[0].where == where
        assert fragment in rejected[0].reason

    def test_row_numbers_count_records_across_hubs(self) -> None:
        hub = {"device_id": CH, "csp_region": "north"}
        items = json_items(
            [
                {**hub, "meter_points": [{"mpxn": "1234567", "fuel": "gas"}, {"mpxn": "1"}]},
                {**hub, "csp_region": "nowhere"},
            ]
        )
        assert [(type(i).__name__, getattr(i, "row", None)) for i in items] == [
            ("EstateRecord", None),
            ("RejectedRow", 2),
            ("RejectedRow", 3),
        ]


class TestJsonFileErrors:
    """Broken JSON stops the import with the line where it broke."""

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("", "empty"),
            ("42", "expected an array"),
            ('{"estate": []}', 'expected the key "hubs"'),
            ("{}", 'expected the key "hubs"'),
            ('{"hubs": {}}', '"hubs" must be an array'),
            ('{"hubs": [], "more": 1}', 'only "hubs"'),
            ("[] []", "after the end"),
            ('[\n{"device_id": "x"},\n{"device_id": }\n]', "JSON line 3"),
            ('[{"a": 1} {"b": 2}]', "expected ',' or ']'"),
            ("[", "JSON line 1"),
        ],
    )
    def test_broken(self, text: str, fragment: str) -> None:
        with pytest.raises(EstateFileError) as caught:
            json_items(text)
        assert fragment in str(caught.value)

    def test_rows_before_the_break_were_already_yielded(self) -> None:
        parsed = estate_file.parse_json(
            io.StringIO(f'[{{"device_id": "{CH}", "csp_region": "north"}}, ]')
        )
        assert isinstance(next(parsed), EstateRecord)
        with pytest.raises(EstateFileError):
            next(parsed)


class _LazyLines(io.TextIOBase):
    """A text stream that makes its lines on demand and counts what was read."""

    def __init__(self, head: str, line: str, count: int, tail: str = "") -> None:
        self.parts: Iterator[str] = iter([head, *(line for _ in range(count)), tail])
        self.pending = ""
        self.chars_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        want = 1 << 30 if size is None or size < 0 else size
        while len(self.pending) < want:
            part = next(self.parts, None)
            if part is None:
                break
            self.pending += part
        out, self.pending = self.pending[:want], self.pending[want:]
        self.chars_read += len(out)
        return out

    def readline(self, size: int | None = -1) -> str:
        while "\n" not in self.pending:
            part = next(self.parts, None)
            if part is None:
                break
            self.pending += part
        cut = self.pending.find("\n") + 1 or len(self.pending)
        out, self.pending = self.pending[:cut], self.pending[cut:]
        self.chars_read += len(out)
        return out

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class TestStreaming:
    """A file of a million rows is read as it is consumed, not loaded first."""

    def test_csv(self) -> None:
        stream = _LazyLines("device_id,csp_region\n", f"{CH},north\n", 1_000_000)
        first = next(estate_file.parse_csv(stream))  # type: ignore[arg-type]
        assert isinstance(first, EstateRecord)
        assert stream.chars_read < 10_000

    def test_json(self) -> None:
        row = json.dumps({"device_id": CH, "csp_region": "south"})
        stream = _LazyLines("[", row + ",\n", 1_000_000, row + "]")
        parsed = estate_file.parse_json(stream)  # type: ignore[arg-type]
        first = [next(parsed) for _ in range(3)]
        assert all(isinstance(item, EstateRecord) for item in first)
        assert stream.chars_read < 200_000

    def test_small_chunks_give_the_same_records(self, monkeypatch: pytest.MonkeyPatch) -> None:
        document = json.dumps(
            {
                "hubs": [
                    {
                        "device_id": CH,
                        "csp_region": "north",
                        "meter_points": [{"mpxn": "1234567", "fuel": "gas", "gas_supplier": GS}],
                    },
                    {"device_id": CH, "csp_region": "central", "meter_points": []},
                    {"device_id": 1234567890, "csp_region": "south", "meter_points": []},
                ]
            },
            indent=1,
        )
        expected = json_items(document)
        monkeypatch.setattr(estate_file._JsonReader, "CHUNK", 3)
        assert json_items(document) == expected
        assert isinstance(expected[2], RejectedRow)
        assert "device_id must be text, got 1234567890" in expected[2].reason


class TestFormatFor:
    """The format comes from --format or the file name."""

    @pytest.mark.parametrize(
        ("name", "explicit", "expected"),
        [("estate.csv", None, "csv"), ("E.JSON", None, "json"), ("estate.txt", "csv", "csv")],
    )
    def test_known(self, name: str, explicit: str | None, expected: str) -> None:
        assert estate_file.format_for(name, explicit) == expected

    @pytest.mark.parametrize(
        ("name", "explicit"), [("estate", None), ("e.xml", None), ("e", "xml")]
    )
    def test_unknown(self, name: str, explicit: str | None) -> None:
        with pytest.raises(EstateFileError, match="format"):
            estate_file.format_for(name, explicit)

    def test_parse_dispatches(self) -> None:
        items = list(
            estate_file.parse(
                io.StringIO(f'[{{"device_id": "{CH}", "csp_region": "north"}}]'), "json"
            )
        )
        assert len(items) == 1
        with pytest.raises(EstateFileError):
            estate_file.parse(io.StringIO(""), "xml")
