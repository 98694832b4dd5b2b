"""Inventory: active firmware per CH, the history, and the processed-outcome key."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from chfw.core.domain import (
    ActivationResult,
    Decision,
    DeviceId,
    FirmwareVersion,
    OutcomeEvent,
    OutcomeKey,
    OutcomeSource,
)
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.store import estate, inventory
from chfw.exceptions import InvalidValueError, UnknownDeviceError
from chfw.shared.db.engine import create_engine_for

CH = DeviceId.parse("00-1D-A1-00-00-00-00-42")
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
V1, V2 = FirmwareVersion.parse("0123ABCD"), FirmwareVersion.parse("0123ABCE")


def outcome(counter: int = 1234, event: OutcomeEvent = OutcomeEvent.OUTCOME, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "key": OutcomeKey(CH, counter, event),
        "source": OutcomeSource.RESPONSE,
        "result": ActivationResult.SUCCESS,
        "decision": Decision.NEW_VERSION,
        "reported_version": V2,
        "version_before": V1,
        "version_after": V2,
        "occurred_at": AT,
        "recorded_at": AT + timedelta(seconds=5),
        "csp": "csp-north",
        "note": None,
    }
    values.update(changes)
    return values


@pytest.fixture
def hub(engine: Engine) -> Engine:
    with engine.begin() as conn:
        estate.add_hub(conn, CH, CspRegion.NORTH)
    return engine


class TestRecordOutcome:
    """record_outcome claims the outcome key exactly once."""

    def test_second_time_is_none(self, hub: Engine) -> None:
        with hub.begin() as conn:
            first = inventory.record_outcome(conn, **outcome())
        with hub.begin() as conn:
            second = inventory.record_outcome(conn, **outcome(result=ActivationResult.SUCCESS))
        with hub.connect() as conn:
            history = inventory.history_for(conn, CH)
        assert isinstance(first, int)
        assert second is None
        assert [entry.id for entry in history] == [first]

    def test_accepted_and_outcome_share_a_counter_but_are_two_events(self, hub: Engine) -> None:
        with hub.begin() as conn:
            accepted = inventory.record_outcome(
                conn,
                **outcome(
                    event=OutcomeEvent.ACCEPTED,
                    result=ActivationResult.ACCEPTED,
                    decision=Decision.PENDING,
                    reported_version=None,
                    version_after=None,
                ),
            )
            final = inventory.record_outcome(conn, **outcome(source=OutcomeSource.ALERT))
            assert inventory.is_processed(conn, OutcomeKey(CH, 1234, OutcomeEvent.ACCEPTED))
            assert not inventory.is_processed(conn, OutcomeKey(CH, 99, OutcomeEvent.OUTCOME))
        assert accepted is not None
        assert final is not None
        assert final != accepted

    def test_values_as_text_are_accepted_and_checked(self, hub: Engine) -> None:
        with hub.begin() as conn:
            new_id = inventory.record_outcome(
                conn,
                **outcome(
                    source="alert",
                    result="hash_mismatch",
                    decision="failure",
                    reported_version="0123abce",
                    version_after=None,
                ),
            )
            with pytest.raises(InvalidValueError, match="result 'exploded'"):
                inventory.record_outcome(conn, **outcome(counter=2, result="exploded"))
        with hub.connect() as conn:
            (entry,) = inventory.history_for(conn, CH)
        assert entry.id == new_id
        assert entry.result is ActivationResult.HASH_MISMATCH
        assert entry.source is OutcomeSource.ALERT
        assert entry.reported_version == V2

    def test_history_round_trip_in_order(self, hub: Engine) -> None:
        paris = timezone(timedelta(hours=1))
        with hub.begin() as conn:
            first = inventory.record_outcome(
                conn, **outcome(counter=2, note="n" * 600, occurred_at=AT.astimezone(paris))
            )
            assert first is not None
            inventory.set_alerts_created(conn, first, 3, note="two alerts")
            inventory.record_outcome(conn, **outcome(counter=1, occurred_at=None))
        with hub.connect() as conn:
            history = inventory.history_for(conn, CH)
        assert [entry.originator_counter for entry in history] == [2, 1]
        entry = history[0]
        assert entry.occurred_at == AT
        assert entry.occurred_at.tzinfo is not None
        assert entry.recorded_at == AT + timedelta(seconds=5)
        assert (entry.version_before, entry.version_after) == (V1, V2)
        assert (entry.alerts_created, entry.note) == (3, "two alerts")
        assert entry.decision is Decision.NEW_VERSION
        assert history[1].occurred_at is None

    def test_long_note_is_cut(self, hub: Engine) -> None:
        with hub.begin() as conn:
            inventory.record_outcome(conn, **outcome(note="n" * 600))
        with hub.connect() as conn:
            (entry,) = inventory.history_for(conn, CH)
        assert entry.note is not None
        assert len(entry.note) == inventory.NOTE_MAX

    def test_naive_times_are_refused(self, hub: Engine) -> None:
        with hub.begin() as conn, pytest.raises(InvalidValueError, match="no timezone"):
            inventory.record_outcome(conn, **outcome(recorded_at=datetime(2025, 1, 1)))

    def test_huge_counter_fits(self, hub: Engine) -> None:
        top = (1 << 64) - 1
        with hub.begin() as conn:
            assert inventory.record_outcome(conn, **outcome(counter=top)) is not None
            assert inventory.record_outcome(conn, **outcome(counter=top)) is None
        with hub.connect() as conn:
            assert inventory.history_for(conn, CH)[0].originator_counter == top

    def test_concurrent_claims_from_two_engines(self, hub: Engine, database_url: str) -> None:
        """Two processes' worth of engines racing on one key: exactly one wins."""
        engines = [create_engine_for(database_url) for _ in range(4)]
        results: list[int | None] = []
        barrier = threading.Barrier(len(engines))

        def claim(eng: Engine) -> None:
            barrier.wait()
            with eng.begin() as conn:
                results.append(inventory.record_outcome(conn, **outcome(counter=77)))

        threads = [threading.Thread(target=claim, args=(eng,)) for eng in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for eng in engines:
            eng.dispose()
        assert len(results) == 4
        assert sum(result is not None for result in results) == 1


class TestActiveFirmware:
    """set_active_firmware updates the CH and refuses unknown CHs."""

    def test_set(self, hub: Engine) -> None:
        with hub.begin() as conn:
            inventory.set_active_firmware(conn, CH, V2, AT)
            found = estate.get_hub(conn, CH)
        assert found is not None
        assert (found.active_firmware, found.firmware_changed_at) == (V2, AT)

    def test_unknown_ch(self, hub: Engine) -> None:
        other = DeviceId.parse("00-1D-A1-00-00-00-00-99")
        with hub.begin() as conn, pytest.raises(UnknownDeviceError, match="not in the estate"):
            inventory.set_active_firmware(conn, other, V2, AT)


class TestOutcomeCounts:
    """outcome_counts groups the history by result."""

    def test_counts(self, hub: Engine) -> None:
        results = [ActivationResult.SUCCESS] * 3 + [ActivationResult.NO_IMAGE_HELD]
        with hub.begin() as conn:
            for counter, result in enumerate(results):
                inventory.record_outcome(conn, **outcome(counter=counter, result=result))
            inventory.record_outcome(conn, **outcome(counter=0))  # a duplicate: not counted
        with hub.connect() as conn:
            assert inventory.outcome_counts(conn) == {"success": 3, "no_image_held": 1}
