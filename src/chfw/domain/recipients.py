"""Responsible Suppliers of a Communications Hub, from registration data."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from chfw.domain.values import SupplierRole, UserId
from chfw.exceptions import InvalidValueError

_MPAN = re.compile(r"\d{13}")
_MPRN = re.compile(r"\d{6,10}")


class Fuel(enum.Enum):
    ELECTRICITY = "electricity"
    GAS = "gas"


@dataclass(frozen=True, slots=True)
class MeterPoint:
    """A meter point whose smart meter is on a CH's HAN, with its registered suppliers.

    Electricity (MPAN, 13 digits) has an Import and optionally an Export
    Supplier; gas (MPRN, 6-10 digits) has a Gas Supplier.
    """

    identifier: str
    fuel: Fuel
    import_supplier: UserId | None = None
    export_supplier: UserId | None = None
    gas_supplier: UserId | None = None

    def __post_init__(self) -> None:
        if self.fuel is Fuel.ELECTRICITY:
            if not isinstance(self.identifier, str) or not _MPAN.fullmatch(self.identifier):
                raise InvalidValueError(f"MPAN {self.identifier!r} must be 13 digits")
            if self.gas_supplier is not None:
                raise InvalidValueError(f"MPAN {self.identifier} cannot have a Gas Supplier")
        else:
            if not isinstance(self.identifier, str) or not _MPRN.fullmatch(self.identifier):
                raise InvalidValueError(f"MPRN {self.identifier!r} must be 6 to 10 digits")
            if self.import_supplier is not None or self.export_supplier is not None:
                raise InvalidValueError(
                    f"MPRN {self.identifier} cannot have an Import or Export Supplier"
                )

    def suppliers(self) -> Iterable[tuple[SupplierRole, UserId]]:
        if self.import_supplier is not None:
            yield SupplierRole.IMPORT_SUPPLIER, self.import_supplier
        if self.export_supplier is not None:
            yield SupplierRole.EXPORT_SUPPLIER, self.export_supplier
        if self.gas_supplier is not None:
            yield SupplierRole.GAS_SUPPLIER, self.gas_supplier


def responsible_suppliers(meter_points: Iterable[MeterPoint]) -> tuple[UserId, ...]:
    """Every supplier registered against a meter point on the CH, once per User ID.

    Sorted so that alert creation (and so ResponseID allocation) is
    deterministic for the same registration data.
    """
    users = {user for point in meter_points for _, user in point.suppliers()}
    return tuple(sorted(users, key=lambda user: user.octets))
