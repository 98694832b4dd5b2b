"""Responsible Suppliers of a Communications Hub, from registration data."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from chfw.core.domain.values import SupplierRole, UserId
from chfw.exceptions import InvalidValueError

_MPAN = re.compile(r"\d{13}")
_MPRN = re.compile(r"\d{6,10}")


class Fuel(enum.Enum):
    ELECTRICITY = "electricity"
    GAS = "gas"


@dataclass(frozen=True, slots=True)
class MeterPoint:
    """A meter point whose smart meter is on a CH's HAN, with its registered suppliers.

    Electricity (MPAN, 13 digits) records an Import and/or an Export
    Supplier: an import MPAN its Import Supplier (and, optionally, the Export
    Supplier of the same premises' export MPAN), an export MPAN only its
    Export Supplier. Gas (MPRN, 6-10 digits) records a Gas Supplier. Who of
    them is Responsible for the CH is :func:`responsible_suppliers`' rule.
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
        """Every registration on this meter point, Responsible or not."""
        if self.import_supplier is not None:
            yield SupplierRole.IMPORT_SUPPLIER, self.import_supplier
        if self.export_supplier is not None:
            yield SupplierRole.EXPORT_SUPPLIER, self.export_supplier
        if self.gas_supplier is not None:
            yield SupplierRole.GAS_SUPPLIER, self.gas_supplier


def responsible_suppliers(meter_points: Iterable[MeterPoint]) -> tuple[UserId, ...]:
    """The CH's Responsible Suppliers under the SEC: who is told of its firmware (N64/N999).

    SEC Section A makes the Import Supplier of each MPAN and the Gas Supplier
    of each MPRN Responsible; the Import Supplier is the supplier registered
    for the Import MPAN, or -- where there is no Import MPAN -- the one
    registered for the Export MPAN. An Export Supplier beside an Import
    Supplier is *not* Responsible, so:

    - every ``import_supplier`` and every ``gas_supplier`` is a recipient;
    - the ``export_supplier`` entries are recipients only when no meter point
      of the CH has an ``import_supplier`` (an export-only registration).

    The estate does not say which MPANs share one electricity meter, so the
    CH's MPANs are taken together as its one Smart Metering System: an Export
    Supplier on any of them beside an Import Supplier on any (the same record,
    or the import MPAN's own) is left out.

    Each User ID comes once, however many roles or meter points it holds;
    sorted by User ID, so that alert creation (and so ResponseID allocation)
    is deterministic for the same registration data in any order.
    """
    points = tuple(meter_points)
    users = {p.import_supplier for p in points if p.import_supplier is not None}
    if not users:
        users = {p.export_supplier for p in points if p.export_supplier is not None}
    users.update(p.gas_supplier for p in points if p.gas_supplier is not None)
    return tuple(sorted(users, key=lambda user: user.octets))
