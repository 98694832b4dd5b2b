"""Estate and supplier files: what the simulator writes, chfw's estate parser reads back whole."""

from __future__ import annotations

import io

import pytest

from chfw.dsp.estate_file import COLUMNS, EstateRecord, RejectedRow, parse_csv, parse_json
from chfw.exceptions import InvalidValueError
from chfw.sim import (
    generate_estate,
    read_suppliers_json,
    write_estate_csv,
    write_estate_json,
    write_suppliers_json,
)
from chfw.sim.estate import SyntheticEstate


def expected_records(estate: SyntheticEstate) -> list[tuple[str, str, object]]:
    return [
        (str(hub.device_id), hub.csp_region, point)
        for hub in estate
        for point in (hub.meter_points or (None,))
    ]


def as_tuples(items: list[EstateRecord | RejectedRow]) -> list[tuple[str, str, object]]:
    assert not [item for item in items if isinstance(item, RejectedRow)]
    return [
        (str(item.device_id), item.csp_region.value, item.meter_point)
        for item in items
        if isinstance(item, EstateRecord)
    ]


@pytest.fixture(scope="module")
def estate() -> SyntheticEstate:
    # Big enough to hold hubs without suppliers and without meters.
    return generate_estate(3000, seed=21)


class TestEstateCsv:
    """The CSV is the estate file format, one row per meter point."""

    def test_header_is_the_estate_file_columns(self, estate: SyntheticEstate) -> None:
        out = io.StringIO()
        write_estate_csv(estate, out)
        assert out.getvalue().splitlines()[0].split(",") == list(COLUMNS)

    def test_round_trips_through_the_estate_parser(self, estate: SyntheticEstate) -> None:
        out = io.StringIO()
        rows = write_estate_csv(estate, out)
        out.seek(0)
        records = as_tuples(list(parse_csv(out)))
        assert records == expected_records(estate)
        assert rows == len(records)

    def test_a_hub_without_meters_is_a_row_without_mpxn(self, estate: SyntheticEstate) -> None:
        bare = [hub for hub in estate if not hub.meter_points]
        assert bare, "the fixture estate should hold a CH with no meter"
        out = io.StringIO()
        write_estate_csv(estate, out)
        line = next(row for row in out.getvalue().splitlines() if str(bare[0].device_id) in row)
        assert line == f"{bare[0].device_id},{bare[0].csp_region},,,,,"

    def test_progress_counts_every_hub(self) -> None:
        seen: list[int] = []
        write_estate_csv(generate_estate(25_000, seed=1), io.StringIO(), seen.append)
        assert sum(seen) == 25_000


class TestEstateJson:
    """The JSON form nests meter points under each hub and parses to the same records."""

    def test_round_trips_through_the_estate_parser(self, estate: SyntheticEstate) -> None:
        out = io.StringIO()
        hubs = write_estate_json(estate, out)
        out.seek(0)
        assert as_tuples(list(parse_json(out))) == expected_records(estate)
        assert hubs == len(estate)

    def test_empty_estate_is_valid_json(self) -> None:
        out = io.StringIO()
        write_estate_json(generate_estate(0), out)
        out.seek(0)
        assert list(parse_json(out)) == []


class TestSuppliersJson:
    """suppliers.json lists each Service User with roles and DUIS version, and reads back."""

    def test_round_trip(self, estate: SyntheticEstate) -> None:
        out = io.StringIO()
        write_suppliers_json(estate, out)
        out.seek(0)
        back = read_suppliers_json(out)
        assert [(s.user_id, s.name, s.roles, s.duis_version) for s in back] == [
            (s.user_id, s.name, s.roles, s.duis_version) for s in estate.suppliers
        ]

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[]", "service_users"),
            ('{"service_users": [{"user_id": 7, "roles": ["IS"]}]}', "user_id must be text"),
            ('{"service_users": [{"user_id": "90-B3-D5-1F-30-01-00-01"}]}', "roles"),
            (
                '{"service_users": [{"user_id": "90-B3-D5-1F-30-01-00-01", "name": "A", '
                '"roles": ["IS"], "duis_version": "4.9"}]}',
                r"service_users\[0\].*not supported",
            ),
            ("{", "not valid JSON"),
        ],
    )
    def test_bad_documents_say_where(self, text: str, message: str) -> None:
        with pytest.raises(InvalidValueError, match=message):
            read_suppliers_json(io.StringIO(text))
