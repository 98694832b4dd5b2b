"""HAN readiness: CHs at or above a version, compared as octets whatever their lengths."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.supplier import readiness
from tests.supplier.recorded import START, device, record

# Device number -> active version. Traps for text comparison: "FF" > "0102" as text but is
# 255 < 258; "00000103" < "0102" as text but is 259 > 258.
VERSIONS: dict[int, str | None] = {
    1: "01",
    2: "FF",
    3: "0100",
    4: "0102",
    5: "000102",
    6: "00000103",
    7: "0200",
    8: "0102",
    9: None,  # an N999 whose version is not fetched yet
}


@pytest.fixture
def estate(engine: Engine) -> Engine:
    for n, version in VERSIONS.items():
        record(engine, device(n), version, START + timedelta(minutes=n))
    return engine


def ready(engine: Engine, minimum: str) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        summary = readiness.readiness(conn, FirmwareVersion.parse(minimum))
        found = list(readiness.ready_hubs(conn, summary))
    assert summary.ready == len(found)
    return [(int(hub.device_id) & 0xFF, hub.active_version) for hub in found]


class TestOrdering:
    """The octets as one big-endian number; equal numbers order by length."""

    def test_at_or_above_0102(self, estate: Engine) -> None:
        assert ready(estate, "0102") == [
            (4, "0102"),  # equal: at the boundary, included
            (5, "000102"),  # same number, longer: above (FirmwareVersion's tie-break)
            (6, "00000103"),
            (7, "0200"),
            (8, "0102"),
        ]

    def test_longer_minimum_of_the_same_number(self, estate: Engine) -> None:
        # 000102 is above 0102, so the CHs on 0102 are not ready for it.
        assert ready(estate, "000102") == [(5, "000102"), (6, "00000103"), (7, "0200")]

    def test_just_above(self, estate: Engine) -> None:
        assert ready(estate, "0000000103") == [(7, "0200")]  # 259 with 5 octets > 00000103

    def test_everything_known_is_at_or_above_the_lowest(self, estate: Engine) -> None:
        # Most versions qualify: the query takes the NOT IN branch.
        assert [n for n, _ in ready(estate, "00")] == [1, 2, 3, 4, 5, 6, 7, 8]

    def test_nothing_above_the_highest(self, estate: Engine) -> None:
        assert ready(estate, "FFFFFFFF") == []

    def test_agrees_with_firmware_version_ordering(self, estate: Engine) -> None:
        for minimum in ("01", "FF", "0100", "0101", "0102", "000102", "0103", "0201"):
            expected = [
                n
                for n, text in VERSIONS.items()
                if text is not None
                and FirmwareVersion.parse(text) >= FirmwareVersion.parse(minimum)
            ]
            assert [n for n, _ in ready(estate, minimum)] == expected, minimum


class TestCounts:
    """One aggregate query: ready and below per version, unknown apart."""

    def test_summary(self, estate: Engine) -> None:
        with estate.connect() as conn:
            summary = readiness.readiness(conn, FirmwareVersion.parse("0102"))
        assert summary.ready_versions == {"0102": 2, "000102": 1, "00000103": 1, "0200": 1}
        assert summary.below_versions == {"01": 1, "FF": 1, "0100": 1}
        assert (summary.ready, summary.below, summary.unknown, summary.total) == (5, 3, 1, 9)
        assert summary.to_json()["ready"] == 5

    def test_split_is_pure(self) -> None:
        summary = readiness.split_versions(
            {"0A": 3, None: 2, "0B": 1, "000A": 4}, FirmwareVersion.parse("0A")
        )
        assert summary.ready_versions == {"0A": 3, "0B": 1, "000A": 4}
        assert (summary.below, summary.unknown) == (0, 2)


class TestCsv:
    """CSV for planning tools: DUIS-form Device IDs, version, since when."""

    def test_content(self, estate: Engine) -> None:
        out = io.StringIO()
        with estate.connect() as conn:
            summary = readiness.readiness(conn, FirmwareVersion.parse("0200"))
            rows = readiness.write_csv(readiness.ready_hubs(conn, summary), out)
        assert rows == 1
        assert list(csv.reader(io.StringIO(out.getvalue()))) == [
            ["device_id", "active_firmware_version", "changed_at"],
            [
                str(DeviceId.from_int(0x001DA10000000007)),
                "0200",
                (START + timedelta(minutes=7)).isoformat(),
            ],
        ]


class TestVersionsAsSigned:
    """Versions are recorded as signed; those that are no hex number are counted apart."""

    def test_not_hex_is_neither_ready_nor_below(self, engine: Engine) -> None:
        record(engine, device(1), "v1.2", START)
        record(engine, device(2), "0200", START)
        record(engine, device(3), "123", START)  # odd length: the number 0x0123
        assert ready(engine, "0122") == [(2, "0200"), (3, "123")]
        with engine.connect() as conn:
            summary = readiness.readiness(conn, FirmwareVersion.parse("0300"))
            assert list(readiness.ready_hubs(conn, summary)) == []
        assert (summary.ready, summary.below, summary.unrecognised) == (0, 2, 1)
        assert summary.to_json()["unrecognised_versions"] == {"v1.2": 1}
        assert summary.total == 3

    def test_split_sorts_unrecognised_apart(self) -> None:
        split = readiness.split_versions({"zz": 2, "0A": 1, None: 4}, FirmwareVersion.parse("01"))
        assert (split.ready_versions, split.unrecognised_versions, split.unknown) == (
            {"0A": 1},
            {"zz": 2},
            4,
        )
