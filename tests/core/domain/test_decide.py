"""Deciding what an outcome means, and who hears about it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chfw.core.domain import (
    ActivationOutcome,
    ActivationResult,
    AlertKind,
    Decision,
    DeviceId,
    DuisVersion,
    Eui64,
    FirmwareVersion,
    Fuel,
    MeterPoint,
    OutcomeEvent,
    OutcomeSource,
    UserId,
    clamp,
    decide,
    plan_activation,
    report_of,
    responsible_suppliers,
    withheld_note,
)
from chfw.exceptions import InvalidValueError

CH = DeviceId.parse("00-1D-A1-00-00-00-00-42")
SENDER = Eui64.parse("90-B3-D5-1F-30-02-00-00")
V1 = FirmwareVersion.parse("02010200")
V2 = FirmwareVersion.parse("02010300")
ALICE = UserId.parse("90-B3-D5-1F-30-01-00-00")
BOB = UserId.parse("90-B3-D5-1F-30-01-00-01")
CAROL = UserId.parse("90-B3-D5-1F-30-01-00-02")


def outcome(result: ActivationResult, version: FirmwareVersion | None = V2) -> ActivationOutcome:
    return ActivationOutcome(
        device_id=CH,
        originator_counter=1234,
        result=result,
        firmware_version=None if result is ActivationResult.ACCEPTED else version,
        source=OutcomeSource.RESPONSE,
        message_code=0x0012,
        message_counter=1234,
        recipient=SENDER,
    )


def mpan(n: int, imp: UserId | None, exp: UserId | None = None) -> MeterPoint:
    return MeterPoint(f"{n:013d}", Fuel.ELECTRICITY, import_supplier=imp, export_supplier=exp)


def mprn(n: int, gas: UserId | None) -> MeterPoint:
    return MeterPoint(f"{n:08d}", Fuel.GAS, gas_supplier=gas)


class TestDecide:
    """N64 is due only for a success reporting a version the inventory does not hold."""

    def test_new_version(self) -> None:
        assert decide(outcome(ActivationResult.SUCCESS), V1) is Decision.NEW_VERSION

    def test_first_report_is_new(self) -> None:
        assert decide(outcome(ActivationResult.SUCCESS), None) is Decision.NEW_VERSION

    def test_same_version(self) -> None:
        assert decide(outcome(ActivationResult.SUCCESS), V2) is Decision.SAME_VERSION

    @pytest.mark.parametrize(
        "result",
        [
            ActivationResult.NO_IMAGE_HELD,
            ActivationResult.HASH_MISMATCH,
            ActivationResult.ACTIVATION_FAILURE,
        ],
    )
    def test_failures_never_alert_even_with_a_different_version(
        self, result: ActivationResult
    ) -> None:
        decision = decide(outcome(result), V1)
        assert decision is Decision.FAILURE
        assert not decision.alerts_due

    def test_accepted_is_pending(self) -> None:
        assert decide(outcome(ActivationResult.ACCEPTED), V1) is Decision.PENDING


class TestOutcome:
    """An outcome's key separates 'accepted' from the later result of the same command."""

    def test_keys_differ_by_event(self) -> None:
        accepted = outcome(ActivationResult.ACCEPTED).key
        final = outcome(ActivationResult.SUCCESS).key
        assert accepted.event is OutcomeEvent.ACCEPTED
        assert final.event is OutcomeEvent.OUTCOME
        assert accepted != final
        assert str(final) == "00-1D-A1-00-00-00-00-42:1234:outcome"

    def test_version_required_unless_accepted(self) -> None:
        with pytest.raises(InvalidValueError):
            outcome(ActivationResult.SUCCESS, version=None)

    def test_counter_range(self) -> None:
        with pytest.raises(InvalidValueError, match="originator_counter"):
            ActivationOutcome(
                device_id=CH,
                originator_counter=1 << 64,
                result=ActivationResult.SUCCESS,
                firmware_version=V1,
                source=OutcomeSource.RESPONSE,
                message_code=0x12,
                message_counter=1,
                recipient=SENDER,
            )


class TestResponsibleSuppliers:
    """Import and Gas Suppliers of the CH's meter points, once per User ID
    (the Export Supplier rule: tests/core/domain/test_recipients.py)."""

    def test_electricity_and_gas_by_two_suppliers(self) -> None:
        assert responsible_suppliers([mpan(1, ALICE), mprn(2, BOB)]) == (ALICE, BOB)

    def test_one_organisation_in_two_roles_gets_one(self) -> None:
        assert responsible_suppliers([mpan(1, ALICE, exp=ALICE), mprn(2, ALICE)]) == (ALICE,)

    def test_export_supplier_beside_an_import_supplier_does_not_count(self) -> None:
        assert responsible_suppliers([mpan(1, ALICE, exp=CAROL)]) == (ALICE,)

    def test_no_registered_supplier(self) -> None:
        assert responsible_suppliers([mpan(1, None), mprn(2, None)]) == ()
        assert responsible_suppliers([]) == ()

    @given(st.lists(st.sampled_from([ALICE, BOB, CAROL, None]), max_size=6))
    def test_deduplicated_and_sorted(self, users: list[UserId | None]) -> None:
        points = [mpan(i, u) for i, u in enumerate(users)]
        result = responsible_suppliers(points)
        assert len(result) == len(set(result))
        assert set(result) == {u for u in users if u is not None}
        assert list(result) == sorted(result, key=lambda u: u.octets)


class TestMeterPoint:
    """Meter point identifiers and roles follow the fuel."""

    def test_bad_mpan(self) -> None:
        with pytest.raises(InvalidValueError, match="MPAN"):
            MeterPoint("123", Fuel.ELECTRICITY)

    def test_bad_mprn(self) -> None:
        with pytest.raises(InvalidValueError, match="MPRN"):
            MeterPoint("12345", Fuel.GAS)

    def test_gas_has_no_import_supplier(self) -> None:
        with pytest.raises(InvalidValueError):
            MeterPoint("1234567", Fuel.GAS, import_supplier=ALICE)

    def test_electricity_has_no_gas_supplier(self) -> None:
        with pytest.raises(InvalidValueError):
            MeterPoint("1234567890123", Fuel.ELECTRICITY, gas_supplier=ALICE)


class TestPlanActivation:
    """The plan chooses N64 or N999 per recipient by DUIS version."""

    VERSIONS: ClassVar[dict[UserId, DuisVersion]] = {
        ALICE: DuisVersion.parse("5.1"),
        BOB: DuisVersion.parse("5.0"),
    }

    def test_n64_and_n999_by_version(self) -> None:
        plan = plan_activation(
            outcome(ActivationResult.SUCCESS), V1, [mpan(1, ALICE), mprn(2, BOB)], self.VERSIONS
        )
        assert plan.decision is Decision.NEW_VERSION
        assert plan.previous_version == V1
        assert plan.new_version == V2
        assert [(a.user_id, a.kind) for a in plan.alerts] == [
            (ALICE, AlertKind.N64),
            (BOB, AlertKind.N999),
        ]
        assert plan.unknown_recipients == ()

    def test_unknown_service_user_is_reported(self) -> None:
        plan = plan_activation(
            outcome(ActivationResult.SUCCESS), None, [mpan(1, CAROL)], self.VERSIONS
        )
        assert plan.alerts == ()
        assert plan.unknown_recipients == (CAROL,)

    def test_no_alerts_when_not_due(self) -> None:
        plan = plan_activation(
            outcome(ActivationResult.HASH_MISMATCH), V1, [mpan(1, ALICE)], self.VERSIONS
        )
        assert plan.decision is Decision.FAILURE
        assert plan.alerts == ()
        assert plan.new_version == V1

    def test_no_supplier_means_no_alert(self) -> None:
        plan = plan_activation(outcome(ActivationResult.SUCCESS), V1, [], self.VERSIONS)
        assert plan.decision is Decision.NEW_VERSION
        assert plan.alerts == ()


class TestStaleOutcomes:
    """A success before the hub's newest report never rolls the inventory back."""

    @staticmethod
    def _at(hour: int | None, counter: int = 1234) -> ActivationOutcome:
        base = outcome(ActivationResult.SUCCESS, V1)
        return ActivationOutcome(
            device_id=base.device_id,
            originator_counter=counter,
            result=base.result,
            firmware_version=base.firmware_version,
            source=OutcomeSource.ALERT,
            message_code=0x00CA,
            message_counter=7,
            recipient=base.recipient,
            occurred_at=None if hour is None else datetime(2030, 1, 1, hour, tzinfo=UTC),
        )

    def test_older_by_the_hubs_time_is_stale(self) -> None:
        latest = report_of(self._at(12, counter=1))
        assert decide(self._at(9, counter=9), V2, latest) is Decision.STALE
        plan = plan_activation(
            self._at(9), V2, [mpan(1, ALICE)], {ALICE: DuisVersion(5, 1)}, latest
        )
        assert plan.alerts == ()
        assert plan.new_version == V2

    def test_newer_by_the_hubs_time_is_new(self) -> None:
        assert decide(self._at(13, 1), V2, report_of(self._at(12, 9))) is Decision.NEW_VERSION

    def test_without_a_time_the_command_counter_orders(self) -> None:
        latest = report_of(self._at(12, counter=50))
        assert decide(self._at(None, counter=49), V2, latest) is Decision.STALE
        assert decide(self._at(None, counter=51), V2, latest) is Decision.NEW_VERSION

    def test_same_time_the_counter_orders(self) -> None:
        latest = report_of(self._at(12, counter=50))
        assert decide(self._at(12, counter=49), V2, latest) is Decision.STALE

    def test_counters_of_another_sender_do_not_order(self) -> None:
        other = dataclasses.replace(self._at(None, counter=1), recipient=BOB)
        assert decide(other, V2, report_of(self._at(12, counter=50))) is Decision.NEW_VERSION

    def test_an_older_report_of_the_current_version_is_stale_too(self) -> None:
        assert decide(self._at(9), V1, report_of(self._at(12))) is Decision.STALE

    def test_nothing_reported_yet(self) -> None:
        assert decide(outcome(ActivationResult.SUCCESS, V1), V2, None) is Decision.NEW_VERSION


class TestClamp:
    """A hub time later than the receipt is not believed."""

    def test_future_time_clamped_and_flagged(self) -> None:
        received = datetime(2026, 12, 7, 9, tzinfo=UTC)
        assert clamp(datetime(2031, 1, 1, tzinfo=UTC), received) == (received, True)

    def test_past_time_and_no_time_kept(self) -> None:
        received = datetime(2026, 12, 7, 9, tzinfo=UTC)
        earlier = datetime(2026, 12, 7, 8, tzinfo=UTC)
        assert clamp(earlier, received) == (earlier, False)
        assert clamp(None, received) == (None, False)


class TestVersionNotCarriable:
    """A new version longer than 4 octets: recorded, no N64 and no N999, the suppliers named."""

    LONG = FirmwareVersion.parse("0102030405")
    VERSIONS: ClassVar[dict[UserId, DuisVersion]] = {
        ALICE: DuisVersion.parse("5.1"),
        BOB: DuisVersion.parse("5.0"),
    }

    def test_no_alert_of_either_kind_and_the_inventory_takes_it(self) -> None:
        plan = plan_activation(
            outcome(ActivationResult.SUCCESS, self.LONG),
            V1,
            [mpan(1, ALICE), mprn(2, BOB), mpan(3, CAROL)],
            self.VERSIONS,
        )
        assert plan.decision is Decision.VERSION_NOT_CARRIABLE
        assert not plan.decision.alerts_due
        assert plan.decision.changes_inventory
        assert plan.alerts == ()
        assert plan.new_version == self.LONG
        assert plan.withheld == (ALICE, BOB, CAROL)

    def test_four_octets_are_carried(self) -> None:
        four = FirmwareVersion.parse("FFFFFFFF")
        assert decide(outcome(ActivationResult.SUCCESS, four), V1) is Decision.NEW_VERSION

    def test_same_long_version_again_is_same_version(self) -> None:
        again = decide(outcome(ActivationResult.SUCCESS, self.LONG), self.LONG)
        assert again is Decision.SAME_VERSION

    def test_a_failure_reporting_a_long_version_is_a_failure(self) -> None:
        assert decide(outcome(ActivationResult.HASH_MISMATCH, self.LONG), V1) is Decision.FAILURE

    def test_the_note_names_version_octets_and_suppliers(self) -> None:
        note = withheld_note(self.LONG, [ALICE, BOB])
        assert "0102030405 has 5 octets" in note
        assert "no N64 or N999" in note
        assert str(ALICE) in note
        assert str(BOB) in note
