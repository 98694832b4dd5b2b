"""The wave: reproducible GBCS bytes that decode as intended, and a correct ground truth."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chfw.core.domain import ActivationResult, FirmwareVersion
from chfw.core.gbcs import decode_message, decode_outcome, verify_device_signature
from chfw.exceptions import InvalidValueError
from chfw.sim import (
    DEFAULT_SUPPLIERS,
    INITIAL_FIRMWARE,
    InventoryStart,
    MessageKind,
    Wave,
    WaveMix,
    generate_estate,
    generate_wave,
    simulator_device_key,
)
from tests.sim.fake_intake import InMemoryPipeline

TARGET = FirmwareVersion.parse("02010300")
SHAPE_HUBS = 20_000


@pytest.fixture(scope="module")
def big_wave() -> Wave:
    return generate_wave(generate_estate(SHAPE_HUBS, seed=31), TARGET, seed=32)


class TestDeterminism:
    """Same seeds, same bytes; another wave seed, another wave over the same estate."""

    def test_same_seed_same_bytes(self) -> None:
        def payloads() -> list[bytes]:
            return list(generate_wave(generate_estate(400, seed=1), TARGET, seed=2).payloads())

        assert payloads() == payloads()

    def test_iterating_a_wave_twice_gives_the_same_bytes(self) -> None:
        wave = generate_wave(generate_estate(300, seed=1), TARGET, seed=9)
        assert list(wave.payloads()) == list(wave.payloads())

    def test_other_wave_seed_other_counters(self) -> None:
        estate = generate_estate(200, seed=1)
        first = {a.command_counter for a in generate_wave(estate, TARGET, 1).activations()}
        second = {a.command_counter for a in generate_wave(estate, TARGET, 2).activations()}
        assert first.isdisjoint(second)

    def test_signed_waves_are_reproducible_and_verify(self) -> None:
        estate = generate_estate(60, seed=4)
        key = simulator_device_key(4)
        first = list(generate_wave(estate, TARGET, 5, device_key=key).payloads())
        assert first == list(generate_wave(estate, TARGET, 5, device_key=key).payloads())
        for data in first:
            verify_device_signature(decode_message(data), key.public_key())


class TestDecoding:
    """Every message decodes with chfw.core.gbcs to exactly the outcome the simulator intended."""

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        estate_seed=st.integers(0, 2**32),
        wave_seed=st.integers(0, 2**32),
        target=st.binary(min_size=1, max_size=4),
    )
    def test_each_message_decodes_as_intended(
        self, estate_seed: int, wave_seed: int, target: bytes
    ) -> None:
        mix = WaveMix(future_dated=0.3, immediate_failure=0.2, duplicate=0.2)
        wave = generate_wave(
            generate_estate(40, estate_seed), FirmwareVersion(target), wave_seed, mix
        )
        for message in wave.messages():
            assert decode_outcome(message.data) == message.expected_outcome()

    def test_signed_messages_decode_as_intended(self) -> None:
        wave = generate_wave(
            generate_estate(50, seed=2), TARGET, 3, device_key=simulator_device_key(2)
        )
        for message in wave.messages():
            assert decode_outcome(message.data) == message.expected_outcome()

    def test_alerts_carry_the_scheduled_execution_time(self) -> None:
        at = datetime(2027, 3, 4, 5, 6, 7, tzinfo=UTC)
        mix = WaveMix(future_dated=1.0, immediate_failure=0.0, execution_spread_seconds=60)
        wave = generate_wave(generate_estate(30, seed=1), TARGET, 1, mix, scheduled_at=at)
        alerts = [m for m in wave.messages() if m.kind is MessageKind.ALERT]
        assert len(alerts) == 30
        for message in alerts:
            occurred = decode_outcome(message.data).occurred_at
            assert occurred is not None
            assert 0 <= (occurred - at).total_seconds() <= 60


class TestShapeAndOrder:
    """Scenario shares are as asked; accepted precedes its alert; copies are exact and later."""

    def test_scenario_shares(self, big_wave: Wave) -> None:
        scenarios = big_wave.ground_truth.scenarios
        assert scenarios["immediate_success"] / SHAPE_HUBS == pytest.approx(0.85, abs=0.015)
        assert scenarios["immediate_failure"] / SHAPE_HUBS == pytest.approx(0.07, abs=0.01)
        future = scenarios["future_success"] + scenarios["future_failure"]
        assert future / SHAPE_HUBS == pytest.approx(0.08, abs=0.01)
        assert scenarios["future_success"] > 4 * scenarios["future_failure"] > 0

    def test_every_failure_kind_occurs_and_reports_the_running_version(
        self, big_wave: Wave
    ) -> None:
        kinds: Counter[ActivationResult] = Counter()
        for activation in big_wave.activations():
            if activation.result is not ActivationResult.SUCCESS:
                kinds[activation.result] += 1
                assert activation.reported_version == INITIAL_FIRMWARE
            else:
                assert activation.reported_version == TARGET
        assert set(kinds) == {
            ActivationResult.NO_IMAGE_HELD,
            ActivationResult.HASH_MISMATCH,
            ActivationResult.ACTIVATION_FAILURE,
        }

    def test_about_two_percent_duplicates(self, big_wave: Wave) -> None:
        truth = big_wave.ground_truth
        assert truth.statuses["duplicate"] / truth.messages == pytest.approx(0.02, abs=0.005)

    def test_order_and_copies(self, big_wave: Wave) -> None:
        seen_accepted: set[int] = set()
        originals: dict[tuple[int, MessageKind], bytes] = {}
        kinds: Counter[MessageKind] = Counter()
        total = 0
        for message in big_wave.messages():
            total += 1
            counter = message.activation.command_counter
            key = (counter, message.kind)
            if message.copy:
                assert originals[key] == message.data
                continue
            assert key not in originals
            originals[key] = message.data
            kinds[message.kind] += 1
            if message.kind is MessageKind.ACCEPTED:
                seen_accepted.add(counter)
            elif message.kind is MessageKind.ALERT:
                assert counter in seen_accepted
        assert kinds[MessageKind.ACCEPTED] == kinds[MessageKind.ALERT] > 0
        assert total == big_wave.ground_truth.messages

    def test_command_counters_unique_per_hub(self, big_wave: Wave) -> None:
        counters = [a.command_counter for a in big_wave.activations()]
        assert len(set(counters)) == len(counters) == SHAPE_HUBS


def recount(wave: Wave) -> InMemoryPipeline:
    pipeline = InMemoryPipeline(wave.estate, wave.inventory_start)
    for message in wave.messages():
        pipeline.submit(message.data)
    return pipeline


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {name: count for name, count in counts.items() if count}


class TestGroundTruth:
    """The ground truth equals a brute-force recount through chfw's decoder and domain rules."""

    @pytest.mark.parametrize("start", list(InventoryStart))
    @pytest.mark.parametrize("target", ["02010300", "02010200"])
    def test_matches_recount(self, start: InventoryStart, target: str) -> None:
        wave = generate_wave(
            generate_estate(4000, seed=41),
            FirmwareVersion.parse(target),
            seed=42,
            inventory_start=start,
        )
        truth = wave.ground_truth
        pipeline = recount(wave)
        assert dict(pipeline.statuses) == nonzero(truth.statuses)
        assert dict(pipeline.outcomes) == nonzero(truth.outcomes)
        assert dict(pipeline.decisions) == nonzero(truth.decisions)
        assert pipeline.alerts_by_recipient() == truth.alerts_by_recipient
        assert pipeline.firmware_distribution() == truth.firmware_distribution
        assert sum(truth.statuses.values()) == truth.messages

    def test_no_alerts_when_the_inventory_already_holds_the_target(self) -> None:
        wave = generate_wave(
            generate_estate(500, seed=1),
            INITIAL_FIRMWARE,
            seed=1,
            inventory_start=InventoryStart.ESTATE,
        )
        truth = wave.ground_truth
        unknown = sum(hub.firmware is None for hub in wave.estate)
        successes = truth.outcomes["success"]
        assert truth.decisions["new_version"] < successes
        # Only hubs the inventory knew nothing about get alerts, at most one per supplier each.
        assert truth.decisions["new_version"] <= unknown
        assert truth.alerts["N64"] + truth.alerts["N999"] <= 3 * unknown

    def test_n999_only_for_duis_5_0_suppliers(self, big_wave: Wave) -> None:
        truth = big_wave.ground_truth
        for supplier in DEFAULT_SUPPLIERS:
            counts = truth.alerts_by_recipient[str(supplier.user_id)]
            if supplier.duis_version.supports_n64:
                assert counts["N999"] == 0
            else:
                assert counts["N64"] == 0
                assert counts["N999"] > 0

    def test_alerts_equal_suppliers_of_successful_hubs(self, big_wave: Wave) -> None:
        expected = sum(
            len(a.hub.responsible_suppliers)
            for a in big_wave.activations()
            if a.result is ActivationResult.SUCCESS
        )
        truth = big_wave.ground_truth
        assert truth.alerts["N64"] + truth.alerts["N999"] == expected
        assert truth.hubs_without_supplier > 0

    def test_json_form(self, big_wave: Wave) -> None:
        document = big_wave.ground_truth.as_json()
        assert document["firmware_distribution"] == {
            "02010300": big_wave.ground_truth.outcomes["success"],
            "none": SHAPE_HUBS - big_wave.ground_truth.outcomes["success"],
        }
        assert set(document["alerts"]) == {"N64", "N999"}


class TestValidation:
    """Impossible mixes and times are refused."""

    def test_shares_over_one(self) -> None:
        with pytest.raises(InvalidValueError, match="must not exceed 1"):
            WaveMix(immediate_failure=0.6, future_dated=0.6)

    def test_bad_delay(self) -> None:
        with pytest.raises(InvalidValueError, match="alert_delay"):
            WaveMix(alert_delay=(5, 1))

    def test_naive_schedule(self) -> None:
        with pytest.raises(InvalidValueError, match="timezone-aware"):
            generate_wave(generate_estate(1), TARGET, scheduled_at=datetime(2026, 1, 1))
