"""Responsible Suppliers per the SEC: Import (or, with none, export-only) and Gas Suppliers."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from chfw.core.domain import Fuel, MeterPoint, UserId, responsible_suppliers

IS_A = UserId.parse("90-B3-D5-1F-30-01-00-00")
IS_B = UserId.parse("90-B3-D5-1F-30-01-00-01")
ES = UserId.parse("90-B3-D5-1F-30-03-00-00")
GS = UserId.parse("90-B3-D5-1F-30-02-00-00")
USERS = (IS_A, IS_B, ES, GS)


def mpan(n: int, imp: UserId | None = None, exp: UserId | None = None) -> MeterPoint:
    return MeterPoint(f"{n:013d}", Fuel.ELECTRICITY, import_supplier=imp, export_supplier=exp)


def mprn(n: int, gas: UserId | None) -> MeterPoint:
    return MeterPoint(f"{n:08d}", Fuel.GAS, gas_supplier=gas)


supplier = st.one_of(st.none(), st.sampled_from(USERS))


@st.composite
def meter_point_sets(draw: st.DrawFn) -> list[MeterPoint]:
    """Up to six meter points of one CH: MPANs with any mix of Import and Export Supplier
    (an import MPAN, an export-only MPAN, both on one record), MPRNs with a Gas Supplier."""
    kinds = draw(st.lists(st.tuples(st.booleans(), supplier, supplier), max_size=6))
    return [
        mpan(i, imp, exp) if electric else mprn(i + 1_000_000, imp)
        for i, (electric, imp, exp) in enumerate(kinds)
    ]


def imports(points: list[MeterPoint]) -> set[UserId]:
    return {p.import_supplier for p in points if p.import_supplier is not None}


def exports(points: list[MeterPoint]) -> set[UserId]:
    return {p.export_supplier for p in points if p.export_supplier is not None}


def gas(points: list[MeterPoint]) -> set[UserId]:
    return {p.gas_supplier for p in points if p.gas_supplier is not None}


class TestExamples:
    """The cases docs/domain.md, "Responsible Suppliers" names."""

    def test_export_supplier_on_the_import_mpans_record_is_not_responsible(self) -> None:
        assert responsible_suppliers([mpan(1, IS_A, exp=ES)]) == (IS_A,)

    def test_export_mpan_beside_an_import_mpan_on_one_ch_is_not_responsible(self) -> None:
        assert responsible_suppliers([mpan(1, IS_A), mpan(2, exp=ES), mprn(3, GS)]) == (IS_A, GS)

    def test_export_only_mpans_supplier_is_the_import_supplier(self) -> None:
        assert responsible_suppliers([mpan(2, exp=ES)]) == (ES,)
        assert responsible_suppliers([mpan(2, exp=ES), mprn(3, GS)]) == (GS, ES)

    def test_an_mpan_without_a_registered_supplier_leaves_the_exporter_responsible(self) -> None:
        # No Import Supplier is registered anywhere: the export MPAN's supplier is it.
        assert responsible_suppliers([mpan(1), mpan(2, exp=ES)]) == (ES,)

    def test_one_organisation_in_every_role_gets_one(self) -> None:
        points = [mpan(1, IS_A, exp=IS_A), mpan(2, exp=IS_A), mprn(3, IS_A)]
        assert responsible_suppliers(points) == (IS_A,)

    def test_an_export_supplier_that_is_also_gas_supplier_stays_for_gas(self) -> None:
        assert responsible_suppliers([mpan(1, IS_A, exp=GS), mprn(2, GS)]) == (IS_A, GS)

    def test_no_supplier(self) -> None:
        assert responsible_suppliers([mpan(1), mprn(2, None)]) == ()


class TestProperties:
    """Over any set of meter points on one CH."""

    @given(meter_point_sets())
    def test_import_and_gas_suppliers_always_responsible(self, points: list[MeterPoint]) -> None:
        result = set(responsible_suppliers(points))
        assert imports(points) | gas(points) <= result

    @given(meter_point_sets())
    def test_export_supplier_beside_an_import_supplier_never_responsible(
        self, points: list[MeterPoint]
    ) -> None:
        if imports(points):
            assert set(responsible_suppliers(points)) == imports(points) | gas(points)

    @given(meter_point_sets())
    def test_export_only_suppliers_are_responsible(self, points: list[MeterPoint]) -> None:
        if not imports(points):
            assert set(responsible_suppliers(points)) == exports(points) | gas(points)

    @given(meter_point_sets())
    def test_each_user_id_at_most_once(self, points: list[MeterPoint]) -> None:
        result = responsible_suppliers(points)
        assert len(result) == len(set(result))

    @given(meter_point_sets(), st.randoms(use_true_random=False))
    def test_order_is_by_user_id_whatever_the_meter_points_order(
        self, points: list[MeterPoint], rnd: random.Random
    ) -> None:
        result = responsible_suppliers(points)
        assert list(result) == sorted(result, key=lambda user: user.octets)
        shuffled = list(points)
        rnd.shuffle(shuffled)
        assert responsible_suppliers(shuffled) == result
        assert responsible_suppliers(iter(points)) == result  # a one-pass iterable will do
