"""Pilot progress from the alerts received: shares, first/last activation, 50 %/90 % times."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain import FirmwareVersion
from chfw.exceptions import InvalidValueError, StoreError
from chfw.supplier import backoffice, pilots
from chfw.supplier.pilots import MemberState, MemberStatus
from tests.supplier.recorded import START, device, record

TARGET = FirmwareVersion.parse("0201")
COHORT = [device(n) for n in range(1, 11)]


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


@pytest.fixture
def pilot(engine: Engine) -> pilots.Pilot:
    """Ten CHs and a crafted history (see each line); the pilot is defined at START."""
    record(engine, device(1), "0201", at(1))
    record(engine, device(2), "0201", at(2))
    record(engine, device(3), "0201", at(2))  # same second as CH 2
    record(engine, device(4), "0200", at(-24))  # the version before the pilot
    record(engine, device(4), "0201", at(5))
    record(engine, device(5), "0201", at(3))
    record(engine, device(5), "0300", at(10))  # moved on to a later release
    record(engine, device(6), None, at(4))  # N999: version still to be fetched
    record(engine, device(7), "0100", at(1))  # another version: not yet
    record(engine, device(8), "0201", at(8))
    record(engine, device(8), "0100", at(7))  # older alert arriving late: history only
    record(engine, device(99), "0201", at(0.5))  # not in the cohort
    with engine.begin() as conn:
        return pilots.create_pilot(conn, "wave-1", TARGET, COHORT, START, "CH fw 2.1")


def status(engine: Engine) -> pilots.PilotProgress:
    with engine.connect() as conn:
        return pilots.pilot_progress(conn, "wave-1")[1]


class TestProgress:
    """The figures a supplier follows, from events with known alert times."""

    def test_counts_and_share(self, engine: Engine, pilot: pilots.Pilot) -> None:
        figures = status(engine)
        assert figures.cohort == 10
        assert figures.activated == 6  # CHs 1, 2, 3, 4, 5, 8
        assert figures.not_yet == 4
        assert figures.share == pytest.approx(0.6)
        assert figures.statuses == {
            MemberStatus.ACTIVATED: 5,
            MemberStatus.MOVED_ON: 1,  # CH 5
            MemberStatus.VERSION_PENDING: 1,  # CH 6
            MemberStatus.NOT_YET: 3,  # CHs 7, 9, 10
        }

    def test_first_last_and_milestones(self, engine: Engine, pilot: pilots.Pilot) -> None:
        figures = status(engine)
        assert figures.first_activation == at(1)
        assert figures.last_activation == at(8)
        fifty = figures.milestone(50)
        assert (fifty.needed, fifty.reached_at, fifty.after_first) == (5, at(5), timedelta(hours=4))
        ninety = figures.milestone(90)
        assert (ninety.needed, ninety.reached_at, ninety.after_first) == (9, None, None)

    def test_cumulative_series_has_one_point_per_time(
        self, engine: Engine, pilot: pilots.Pilot
    ) -> None:
        assert status(engine).series == (
            (at(1), 1),
            (at(2), 3),
            (at(3), 4),
            (at(5), 5),
            (at(8), 6),
        )

    def test_fetched_n999_version_counts_at_its_alert_time(
        self, engine: Engine, pilot: pilots.Pilot
    ) -> None:
        with engine.begin() as conn:
            backoffice.record_fetched_version(conn, device(6), TARGET, at(30))
        figures = status(engine)
        assert figures.activated == 7
        assert figures.statuses[MemberStatus.VERSION_PENDING] == 0
        assert figures.milestone(50).reached_at == at(4)  # 1, 2, 2, 3, 4: the fifth is CH 6
        assert figures.milestone(50).after_first == timedelta(hours=3)

    def test_ninety_percent(self, engine: Engine, pilot: pilots.Pilot) -> None:
        with engine.begin() as conn:
            backoffice.record_fetched_version(conn, device(6), TARGET, at(30))
        for n, hours in ((7, 12), (9, 20), (10, 11)):
            record(engine, device(n), "0201", at(hours))
        figures = status(engine)
        assert figures.activated == 10
        ninety = figures.milestone(90)
        # Times 1, 2, 2, 3, 4, 5, 8, 11, 12, 20: the ninth is at 12 h.
        assert (ninety.reached_at, ninety.after_first) == (at(12), timedelta(hours=11))
        assert figures.series[-1] == (at(20), 10)

    def test_json(self, engine: Engine, pilot: pilots.Pilot) -> None:
        with engine.connect() as conn:
            data = pilots.progress_json(*pilots.pilot_progress(conn, "wave-1"))
        assert data["target_version"] == "0201"
        assert (data["cohort"], data["activated"], data["not_yet"]) == (10, 6, 4)
        assert data["statuses"]["moved_on"] == 1
        assert data["milestones"][0] == {
            "percent": 50,
            "needed": 5,
            "reached_at": at(5).isoformat(),
            "seconds_after_first": 4 * 3600.0,
        }
        assert data["series"][1] == {"at": at(2).isoformat(), "activated": 3}


class TestExport:
    """One CSV row per cohort CH, in Device ID order."""

    def test_rows(self, engine: Engine, pilot: pilots.Pilot) -> None:
        out = io.StringIO()
        with engine.connect() as conn:
            rows = pilots.write_export(pilot, pilots.member_states(conn, pilot), out)
        assert rows == 10
        table = list(csv.reader(io.StringIO(out.getvalue())))
        assert table[0] == ["device_id", "active_version", "activated_at", "status"]

        def row(n: int, version: str, hours: float | None, state: str) -> list[str]:
            when = "" if hours is None else at(hours).isoformat()
            return [str(device(n)), version, when, state]

        assert table[1:] == [
            row(1, "0201", 1, "activated"),
            row(2, "0201", 2, "activated"),
            row(3, "0201", 2, "activated"),
            row(4, "0201", 5, "activated"),
            row(5, "0300", 3, "moved_on"),
            row(6, "", None, "version_pending"),
            row(7, "0100", None, "not_yet"),
            row(8, "0201", 8, "activated"),
            row(9, "", None, "not_yet"),
            row(10, "", None, "not_yet"),
        ]
        assert table[1][0] == "00-1D-A1-00-00-00-00-01"


class TestDefinition:
    """Creating and listing pilots."""

    def test_list_with_cohort_sizes(self, engine: Engine, pilot: pilots.Pilot) -> None:
        with engine.begin() as conn:
            pilots.create_pilot(conn, "wave-0", FirmwareVersion.parse("01"), COHORT[:3], START)
            found = pilots.list_pilots(conn)
        assert [(p.name, p.cohort_size, p.target_version.hex) for p in found] == [
            ("wave-0", 3, "01"),
            ("wave-1", 10, "0201"),
        ]
        assert found[1].description == "CH fw 2.1"
        assert found[1].created_at == START

    def test_name_taken(self, engine: Engine, pilot: pilots.Pilot) -> None:
        with pytest.raises(StoreError, match="already exists"), engine.begin() as conn:
            pilots.create_pilot(conn, "wave-1", TARGET, COHORT, START)

    def test_unknown_pilot_names_the_known_ones(self, engine: Engine, pilot: pilots.Pilot) -> None:
        expected = r"no pilot 'wave-9' \(pilots: wave-1\)"
        with pytest.raises(StoreError, match=expected), engine.connect() as conn:
            pilots.get_pilot(conn, "wave-9")

    def test_empty_cohort_and_bad_names(self, engine: Engine) -> None:
        with engine.begin() as conn:
            with pytest.raises(InvalidValueError, match="empty cohort"):
                pilots.create_pilot(conn, "p", TARGET, [], START)
            with pytest.raises(InvalidValueError, match="pilot name"):
                pilots.create_pilot(conn, "-bad", TARGET, COHORT, START)

    def test_duplicate_members_are_kept_once(self, engine: Engine) -> None:
        with engine.begin() as conn:
            pilot = pilots.create_pilot(conn, "p", TARGET, [device(1), device(1)], START)
        assert pilot.cohort_size == 1


class TestPureProgress:
    """progress() on member states alone: rounding of the milestones, empty cases."""

    def member(self, n: int, hours: float | None) -> MemberState:
        activated = None if hours is None else at(hours)
        return MemberState(device(n), "0201" if activated else None, False, activated)

    def test_milestones_round_up(self) -> None:
        figures = pilots.progress(TARGET, [self.member(1, 0), self.member(2, 3), self.member(3, 7)])
        assert figures.milestone(50).needed == 2  # 1.5 CHs is not half of three
        assert figures.milestone(50).after_first == timedelta(hours=3)
        assert figures.milestone(90).needed == 3
        assert figures.milestone(90).after_first == timedelta(hours=7)

    def test_nothing_activated(self) -> None:
        figures = pilots.progress(TARGET, [self.member(1, None)])
        assert (figures.activated, figures.share, figures.series) == (0, 0.0, ())
        assert figures.first_activation is None
        assert figures.milestone(50).reached_at is None

    def test_empty_cohort(self) -> None:
        figures = pilots.progress(TARGET, [])
        assert (figures.cohort, figures.share) == (0, 0.0)
