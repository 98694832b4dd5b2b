"""The synthetic estate: reproducible, shaped like GB's, with valid and unique identifiers."""

from __future__ import annotations

from collections import Counter
from itertools import islice

import pytest

from chfw.core.domain import DuisVersion, Fuel, UserId
from chfw.exceptions import InvalidValueError
from chfw.sim import (
    DEFAULT_SUPPLIERS,
    INITIAL_FIRMWARE,
    REGIONS,
    EstateMix,
    SimHub,
    SimSupplier,
    generate_estate,
)
from chfw.sim.estate import mpan_check_digit

SHAPE_HUBS = 20_000


@pytest.fixture(scope="module")
def hubs() -> list[SimHub]:
    return list(generate_estate(SHAPE_HUBS, seed=11))


def spec_check_digit(first12: str) -> int:
    """The MPAN check digit as the MRA spells it out: prime weights, sum, mod 11, mod 10."""
    primes = [3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43]
    return sum(int(digit) * prime for digit, prime in zip(first12, primes, strict=True)) % 11 % 10


class TestDeterminism:
    """The same seed gives the same estate; another seed another one."""

    def test_same_seed_same_hubs(self) -> None:
        assert list(generate_estate(500, seed=3)) == list(generate_estate(500, seed=3))

    def test_iterating_twice_gives_the_same_hubs(self) -> None:
        estate = generate_estate(300, seed=8)
        assert list(estate) == list(estate)

    def test_other_seed_other_estate(self) -> None:
        first = list(generate_estate(200, seed=1))
        second = list(generate_estate(200, seed=2))
        assert [h.meter_points for h in first] != [h.meter_points for h in second]
        assert {h.device_id for h in first}.isdisjoint({h.device_id for h in second})

    def test_a_prefix_of_a_bigger_estate_is_the_smaller_estate(self) -> None:
        small = list(generate_estate(100, seed=5))
        assert list(islice(generate_estate(10_000, seed=5), 100)) == small

    def test_length_without_generating(self) -> None:
        assert len(generate_estate(20_000_000, seed=0)) == 20_000_000


class TestShape:
    """Regions, fuels and suppliers come out in the proportions asked for."""

    def test_every_hub_is_in_a_csp_region_in_roughly_the_weights(self, hubs: list[SimHub]) -> None:
        counts = Counter(hub.csp_region for hub in hubs)
        assert set(counts) == set(REGIONS)
        for region, weight in zip(REGIONS, EstateMix().region_weights, strict=True):
            assert counts[region] / SHAPE_HUBS == pytest.approx(weight, abs=0.02)

    def test_fuel_shares(self, hubs: list[SimHub]) -> None:
        supplied = [hub for hub in hubs if hub.responsible_suppliers]
        gas = sum(any(p.fuel is Fuel.GAS for p in hub.meter_points) for hub in supplied)
        elec = sum(any(p.fuel is Fuel.ELECTRICITY for p in hub.meter_points) for hub in supplied)
        assert gas / len(supplied) == pytest.approx(0.60, abs=0.02)
        assert elec / len(supplied) == pytest.approx(0.97, abs=0.01)
        assert all(1 <= len(hub.meter_points) <= 2 for hub in supplied)

    def test_some_export_suppliers(self, hubs: list[SimHub]) -> None:
        points = [p for hub in hubs for p in hub.meter_points if p.fuel is Fuel.ELECTRICITY]
        exports = [p for p in points if p.export_supplier is not None]
        assert len(exports) / len(points) == pytest.approx(0.05, abs=0.01)

    def test_a_few_hubs_have_no_supplier_some_of_them_no_meter(self, hubs: list[SimHub]) -> None:
        unsupplied = [hub for hub in hubs if not hub.responsible_suppliers]
        assert 0.002 < len(unsupplied) / SHAPE_HUBS < 0.01
        assert any(not hub.meter_points for hub in unsupplied)
        assert any(hub.meter_points for hub in unsupplied)

    def test_gas_often_from_another_supplier_sometimes_the_same(self, hubs: list[SimHub]) -> None:
        dual: Counter[bool] = Counter()
        for hub in hubs:
            elec = [p.import_supplier for p in hub.meter_points if p.fuel is Fuel.ELECTRICITY]
            gas = [p.gas_supplier for p in hub.meter_points if p.fuel is Fuel.GAS]
            if elec and gas and elec[0] is not None and gas[0] is not None:
                dual[elec[0] == gas[0]] += 1
        assert dual[True] > 0.3 * sum(dual.values())
        assert dual[False] > 0.3 * sum(dual.values())

    def test_every_supplier_is_on_a_supported_duis_version_and_some_on_5_0(self) -> None:
        versions = {s.duis_version for s in DEFAULT_SUPPLIERS}
        assert DuisVersion.parse("5.0") in versions
        assert any(v.supports_n64 for v in versions)
        assert len({s.user_id for s in DEFAULT_SUPPLIERS}) == len(DEFAULT_SUPPLIERS)

    def test_suppliers_only_registered_in_roles_they_hold(self, hubs: list[SimHub]) -> None:
        roles = {s.user_id: s.roles for s in DEFAULT_SUPPLIERS}
        for hub in hubs:
            for point in hub.meter_points:
                for role, user in point.suppliers():
                    assert role.value in roles[user]

    def test_firmware_starts_on_the_initial_version_or_unknown(self, hubs: list[SimHub]) -> None:
        counts = Counter(hub.firmware for hub in hubs)
        assert set(counts) == {INITIAL_FIRMWARE, None}
        assert counts[None] / SHAPE_HUBS == pytest.approx(0.02, abs=0.01)


class TestIdentifiers:
    """Device IDs, MPANs and MPRNs are valid and unique within an estate."""

    def test_device_ids_unique_and_in_the_simulator_range(self, hubs: list[SimHub]) -> None:
        ids = [hub.device_id for hub in hubs]
        assert len(set(ids)) == len(ids)
        assert all(str(device).startswith("00-1D-A1-") for device in ids)

    def test_meter_point_identifiers_unique(self, hubs: list[SimHub]) -> None:
        identifiers = [p.identifier for hub in hubs for p in hub.meter_points]
        assert len(set(identifiers)) == len(identifiers)

    def test_mpans_carry_a_valid_check_digit_and_a_regional_distributor(
        self, hubs: list[SimHub]
    ) -> None:
        regional = {"north": {15, 16, 17, 18}, "central": {11, 13, 14, 21, 23}}
        regional["south"] = {10, 12, 19, 20, 22}
        for hub in hubs[:2000]:
            for point in hub.meter_points:
                if point.fuel is Fuel.ELECTRICITY:
                    mpan = point.identifier
                    assert int(mpan[-1]) == spec_check_digit(mpan[:12])
                    assert int(mpan[:2]) in regional[hub.csp_region]

    def test_check_digit_agrees_with_the_spec_formula(self) -> None:
        for first12 in ("000000000000", "123456789012", "999999999999", "150000000001"):
            assert mpan_check_digit(first12) == spec_check_digit(first12)

    def test_check_digit_refuses_anything_but_12_digits(self) -> None:
        with pytest.raises(InvalidValueError, match="12 digits"):
            mpan_check_digit("12345")


class TestValidation:
    """Impossible estates are refused with a message saying what to change."""

    def test_negative_size(self) -> None:
        with pytest.raises(InvalidValueError, match="hubs"):
            generate_estate(-1)

    def test_probability_out_of_range(self) -> None:
        with pytest.raises(InvalidValueError, match="gas"):
            EstateMix(gas=1.5)

    def test_needs_a_gas_supplier(self) -> None:
        electric_only = SimSupplier(
            UserId.parse("90-B3-D5-1F-30-01-00-09"), "Sparks", frozenset({"IS"}), DuisVersion(5, 1)
        )
        with pytest.raises(InvalidValueError, match="GS"):
            generate_estate(10, suppliers=[electric_only])

    def test_supplier_ids_must_differ(self) -> None:
        with pytest.raises(InvalidValueError, match="distinct"):
            generate_estate(10, suppliers=[*DEFAULT_SUPPLIERS, DEFAULT_SUPPLIERS[0]])
