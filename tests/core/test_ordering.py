"""One order of events per hub: late answers, lying clocks and reordering cannot roll it back.

Through ``ActivationService`` (what the intake runs), on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from chfw.core.domain import ActivationResult, Eui64, FirmwareVersion
from chfw.core.gbcs import encode_alert, encode_response
from chfw.dsp.processing import Status
from chfw.dsp.store import estate, inventory
from chfw.dsp.store.schema import firmware_history, hubs
from chfw.dsp.store.schema import outbox as outbox_table
from tests.small_dsp import ALICE, CH1, Dsp, build_dsp

SENDER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
OTHER_SENDER = Eui64.parse("90-B3-D5-1F-30-01-00-09")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
VERSIONS = [FirmwareVersion.parse(v) for v in ("02010300", "02010400", "02010500", "02020000")]


def response(
    counter: int,
    version: FirmwareVersion,
    at: datetime | None = None,
    sender: Eui64 = SENDER,
) -> bytes:
    return encode_response(
        device_id=CH1,
        recipient=sender,
        counter=counter,
        result=ActivationResult.SUCCESS,
        firmware_version=version,
        date_time=at,
    )


def alert(counter: int, version: FirmwareVersion, executed_at: datetime) -> bytes:
    return encode_alert(
        device_id=CH1,
        recipient=SENDER,
        message_counter=10_000 + counter,
        originator_counter=counter,
        result=ActivationResult.SUCCESS,
        firmware_version=version,
        executed_at=executed_at,
    )


@pytest.fixture
def dsp(engine: Engine) -> Dsp:
    built = build_dsp(engine)
    built.service.clock = lambda: NOW
    return built


def active(dsp: Dsp) -> FirmwareVersion | None:
    with dsp.engine.connect() as conn:
        hub = estate.get_hub(conn, CH1)
    assert hub is not None
    return hub.active_firmware


def alerted_versions(dsp: Dsp) -> list[str]:
    """The N64 versions sent to ALICE, in the order they were queued."""
    with dsp.engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox_table.c.firmware_version)
            .where(outbox_table.c.user_id == ALICE.hex, outbox_table.c.device_id == CH1.hex)
            .order_by(outbox_table.c.id)
        )
        return [row[0] for row in rows]


def alerted_counters(dsp: Dsp) -> list[int]:
    """The command counter behind each alert sent to ALICE, in the order they were queued."""
    with dsp.engine.connect() as conn:
        rows = conn.execute(
            sa.select(firmware_history.c.originator_counter)
            .select_from(
                outbox_table.join(
                    firmware_history, firmware_history.c.id == outbox_table.c.history_id
                )
            )
            .where(outbox_table.c.user_id == ALICE.hex, outbox_table.c.device_id == CH1.hex)
            .order_by(outbox_table.c.id)
        )
        return [int(row[0]) for row in rows]


class TestLateAnswers:
    """An answer to an earlier CS06 that arrives late is history, never a new version."""

    def test_late_answer_without_a_time_is_stale(self, dsp: Dsp) -> None:
        dsp.service.submit([response(2, VERSIONS[1])], "north")
        (late,) = dsp.service.submit([response(1, VERSIONS[0])], "north")
        assert late.decision == "stale"
        assert late.alerts == {}
        assert active(dsp) == VERSIONS[1]
        assert alerted_versions(dsp) == [VERSIONS[1].hex]

    def test_late_answer_from_another_sender_cannot_be_ordered(self, dsp: Dsp) -> None:
        """Counters belong to their sender: another sender's lower counter orders nothing."""
        dsp.service.submit([response(2, VERSIONS[1])], "north")
        (other,) = dsp.service.submit([response(1, VERSIONS[0], sender=OTHER_SENDER)], "north")
        assert other.decision == "new_version"

    def test_a_timed_report_before_the_newest_is_stale(self, dsp: Dsp) -> None:
        dsp.service.submit([alert(5, VERSIONS[2], NOW - timedelta(hours=1))], "north")
        (late,) = dsp.service.submit([alert(4, VERSIONS[1], NOW - timedelta(hours=2))], "north")
        assert late.decision == "stale"
        assert active(dsp) == VERSIONS[2]


class TestClocksThatLie:
    """A hub time later than the receipt is clamped to it and flagged; nothing freezes."""

    def test_a_hub_in_2031_does_not_freeze_the_hub(self, dsp: Dsp) -> None:
        (future,) = dsp.service.submit(
            [response(1, VERSIONS[0], datetime(2031, 1, 1, tzinfo=UTC))], "north"
        )
        assert future.decision == "new_version"
        assert any("later than the message was received" in w for w in future.warnings)
        with dsp.engine.connect() as conn:
            (entry,) = inventory.history_for(conn, CH1)
            assert entry.occurred_at == NOW
            stored = conn.execute(
                sa.select(hubs.c.latest_report_at, hubs.c.firmware_changed_at).where(
                    hubs.c.device_id == CH1.hex
                )
            ).one()
        # Recorded at the receipt time; for ordering, a time not believed is no time.
        assert stored.latest_report_at is None
        assert stored.firmware_changed_at is not None
        dsp.service.clock = lambda: NOW + timedelta(days=1)
        (genuine,) = dsp.service.submit(
            [response(2, VERSIONS[1], NOW + timedelta(hours=20))], "north"
        )
        assert genuine.decision == "new_version"
        assert active(dsp) == VERSIONS[1]
        assert alerted_versions(dsp) == [VERSIONS[0].hex, VERSIONS[1].hex]

    def test_a_clamped_time_from_an_earlier_command_is_stale(self, dsp: Dsp) -> None:
        """Its time is not believed and its counter is lower: stale, and no alert is built
        for it (the decision and the recipients come from one decision)."""
        dsp.service.submit([response(50, VERSIONS[1], NOW - timedelta(hours=1))], "north")
        (late,) = dsp.service.submit(
            [response(49, VERSIONS[2], datetime(2031, 1, 1, tzinfo=UTC))], "north"
        )
        assert (late.decision, late.alerts) == ("stale", {})
        assert active(dsp) == VERSIONS[1]
        assert alerted_versions(dsp) == [VERSIONS[1].hex]


class TestConflicts:
    """Same identity, other content: 409-worthy, recorded, the first stands."""

    def test_redelivery_is_a_duplicate(self, dsp: Dsp) -> None:
        dsp.service.submit([response(7, VERSIONS[0])], "north")
        (again,) = dsp.service.submit([response(7, VERSIONS[0])], "north")
        assert again.status is Status.DUPLICATE

    def test_other_content_is_a_conflict(self, dsp: Dsp) -> None:
        dsp.service.submit([response(7, VERSIONS[0])], "north")
        (other,) = dsp.service.submit([response(7, VERSIONS[1])], "north")
        assert other.status is Status.CONFLICT
        assert other.to_json()["status"] == "conflict"
        assert "received before with other content" in (other.error or "")
        assert active(dsp) == VERSIONS[0]
        assert alerted_versions(dsp) == [VERSIONS[0].hex]

    def test_the_same_counter_from_another_sender_is_another_outcome(self, dsp: Dsp) -> None:
        dsp.service.submit([response(7, VERSIONS[0])], "north")
        (other,) = dsp.service.submit([response(7, VERSIONS[1], sender=OTHER_SENDER)], "north")
        assert other.status is Status.PROCESSED

    def test_conflict_inside_one_batch(self, dsp: Dsp) -> None:
        first, second = dsp.service.submit(
            [response(8, VERSIONS[0]), response(8, VERSIONS[2])], "north"
        )
        assert (first.status, second.status) == (Status.PROCESSED, Status.CONFLICT)

    def test_rows_from_before_the_sender_was_kept_match_any_sender(self, dsp: Dsp) -> None:
        dsp.service.submit([response(9, VERSIONS[0])], "north")
        with dsp.engine.begin() as conn:  # as migration 0010 leaves older rows
            conn.execute(sa.update(firmware_history).values(sender="", content_digest=None))
        (again,) = dsp.service.submit([response(9, VERSIONS[3])], "north")
        assert again.status is Status.DUPLICATE


@st.composite
def hub_histories(draw: st.DrawFn) -> list[bytes]:
    """One hub's successes for commands 1..n from one sender, as a hub would report them:
    times (where given) grow with the counter; some answers carry no time."""
    n = draw(st.integers(2, 7))
    messages = []
    at = NOW - timedelta(days=10)
    for counter in range(1, n + 1):
        at += timedelta(minutes=draw(st.integers(1, 600)))
        version = draw(st.sampled_from(VERSIONS))
        kind = draw(st.sampled_from(["timeless", "timed", "alert"]))
        if kind == "timeless":
            messages.append(response(counter, version))
        elif kind == "timed":
            messages.append(response(counter, version, at))
        else:
            messages.append(alert(counter, version, at))
    return messages


class TestAnyArrivalOrder:
    """Any arrival order ends where arrival in order ends, and never alerts backwards."""

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(history=hub_histories(), data=st.data())
    def test_same_inventory_and_history(
        self, dsp: Dsp, history: list[bytes], data: st.DataObject
    ) -> None:
        engine = dsp.engine
        order = data.draw(st.permutations(history), label="arrival")
        cuts = sorted(data.draw(st.sets(st.integers(1, len(history) - 1)), label="batches"))
        repeats = data.draw(st.lists(st.sampled_from(history), max_size=2), label="again")

        def run(arrivals: list[bytes], at: list[int]) -> tuple[object, ...]:
            with engine.begin() as conn:  # the hub as new, the estate and users kept
                conn.execute(sa.delete(outbox_table))
                conn.execute(sa.delete(firmware_history))
                conn.execute(
                    sa.update(hubs).values(
                        active_firmware=None,
                        firmware_changed_at=None,
                        latest_report_at=None,
                        latest_report_sender=None,
                        latest_report_counter=None,
                    )
                )
            for start, end in zip([0, *at], [*at, len(arrivals)], strict=True):
                dsp.service.submit(arrivals[start:end], "north")
            with engine.connect() as conn:
                hub = estate.get_hub(conn, CH1)
                assert hub is not None
                history_rows = {
                    (e.originator_counter, e.reported_version.hex if e.reported_version else None)
                    for e in inventory.history_for(conn, CH1)
                }
                latest = conn.execute(
                    sa.select(hubs.c.latest_report_sender, hubs.c.latest_report_counter).where(
                        hubs.c.device_id == CH1.hex
                    )
                ).one()
            return hub.active_firmware, tuple(latest), history_rows, alerted_counters(dsp)

        version, latest, rows, _ = run(history, [])
        out_of_order = run([*order, *repeats], cuts)
        assert out_of_order[:3] == (version, latest, rows)
        # Here the hub's order is the counters' order: every N64 queued after another
        # comes from a later command, so no supplier is told of an older version after
        # a newer one.
        alerted = out_of_order[3]
        assert alerted == sorted(alerted)
        assert len(alerted) == len(set(alerted))
