"""A synthetic estate: Service Users, Communications Hubs and their meter points.

Pure and deterministic: the same ``(hubs, seed)`` always gives the same
estate, so the wave generator, the CLI and a test can each rebuild it instead
of passing millions of rows around. Hubs are produced lazily, in order, by
iterating the estate (iterate it again and the same hubs come out), so a
20-million-hub estate never has to sit in memory.

Identifiers are readable and unique within an estate:

- Device IDs ``00-1D-A1-SS-NN-NN-NN-NN`` (SS: low byte of the seed, N: hub number);
- MPANs: a distributor ID of the hub's CSP region, a 10-digit serial from a
  seeded permutation of the hub number, and the real MPAN check digit;
- MPRNs: 10 digits from another seeded permutation of the hub number.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

from chfw.core.domain import (
    DeviceId,
    DuisVersion,
    FirmwareVersion,
    Fuel,
    MeterPoint,
    UserId,
    responsible_suppliers,
)
from chfw.exceptions import InvalidValueError

REGIONS = ("north", "central", "south")
#: Starting firmware of every hub that has reported one.
INITIAL_FIRMWARE = FirmwareVersion(bytes.fromhex("02010200"))
MAX_HUBS = (1 << 32) - 1

# MPAN distributor IDs (the first two digits) by CSP region.
_DISTRIBUTORS = {
    "north": ("15", "16", "17", "18"),
    "central": ("11", "13", "14", "21", "23"),
    "south": ("10", "12", "19", "20", "22"),
}
_MPAN_WEIGHTS = (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)
_SERIAL_SPACE = 10**10
# Multipliers coprime to 10**10, so that ``(n * A + B) % 10**10`` is a permutation.
_MPAN_MULTIPLIER = 6_364_136_223
_MPRN_MULTIPLIER = 4_294_967_291


@dataclass(frozen=True, slots=True)
class EstateMix:
    """The shape of an estate, as probabilities per hub (or per meter point)."""

    region_weights: tuple[float, float, float] = (0.32, 0.36, 0.32)
    no_supplier: float = 0.005  # hubs with no registered supplier at all
    no_meters: float = 0.5  # ... of which have no meter point either
    electricity: float = 0.97  # hubs with an electricity meter point
    gas: float = 0.60  # hubs with a gas meter point
    export: float = 0.05  # electricity points that also have an Export Supplier
    dual_fuel: float = 0.55  # gas supplied by the Import Supplier when it can supply gas
    no_firmware: float = 0.02  # hubs whose firmware the inventory has never recorded

    def __post_init__(self) -> None:
        for name in ("no_supplier", "no_meters", "electricity", "gas", "export", "dual_fuel"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidValueError(f"EstateMix.{name} must be a probability, got {value}")
        if not 0.0 <= self.no_firmware <= 1.0:
            raise InvalidValueError(
                f"EstateMix.no_firmware must be a probability, got {self.no_firmware}"
            )
        if len(self.region_weights) != len(REGIONS) or min(self.region_weights) < 0:
            raise InvalidValueError("EstateMix.region_weights needs 3 non-negative weights")


@dataclass(frozen=True, slots=True)
class SimSupplier:
    """A Service User acting as supplier; ``share`` weights how many meter points it wins."""

    user_id: UserId
    name: str
    roles: frozenset[str]
    duis_version: DuisVersion
    share: float = 1.0

    @property
    def supplies_electricity(self) -> bool:
        return "IS" in self.roles

    @property
    def supplies_export(self) -> bool:
        return "ES" in self.roles

    @property
    def supplies_gas(self) -> bool:
        return "GS" in self.roles

    def as_json(self) -> dict[str, object]:
        return {
            "user_id": str(self.user_id),
            "name": self.name,
            "roles": sorted(self.roles),
            "duis_version": str(self.duis_version),
        }


def _supplier(suffix: int, name: str, roles: str, duis: str, share: float) -> SimSupplier:
    return SimSupplier(
        user_id=UserId.parse(f"90-B3-D5-1F-30-01-00-{suffix:02X}"),
        name=name,
        roles=frozenset(roles.split(",")),
        duis_version=DuisVersion.parse(duis),
        share=share,
    )


#: Six invented suppliers on every DUIS version chfw renders; two are on 5.0 (they get N999).
DEFAULT_SUPPLIERS: tuple[SimSupplier, ...] = (
    _supplier(1, "Northern Lights Energy", "IS,GS", "5.1", 0.24),
    _supplier(2, "Meridian Power", "IS,ES,GS", "5.2", 0.22),
    _supplier(3, "Old Grid Supply", "IS,GS", "5.0", 0.14),
    _supplier(4, "Greenleaf Export", "IS,ES", "5.3", 0.12),
    _supplier(5, "Harbour Utilities", "IS,ES,GS", "5.4", 0.18),
    _supplier(6, "Valley Gas Direct", "GS", "5.0", 0.10),
)


@dataclass(frozen=True, slots=True)
class SimHub:
    """One Communications Hub of the synthetic estate."""

    index: int
    device_id: DeviceId
    csp_region: str
    meter_points: tuple[MeterPoint, ...]
    firmware: FirmwareVersion | None

    @property
    def responsible_suppliers(self) -> tuple[UserId, ...]:
        return responsible_suppliers(self.meter_points)


class SyntheticEstate:
    """A deterministic estate of ``hubs`` CHs; iterate it (as often as needed) for the hubs."""

    def __init__(
        self,
        hubs: int,
        seed: int = 0,
        suppliers: Sequence[SimSupplier] = DEFAULT_SUPPLIERS,
        mix: EstateMix | None = None,
    ) -> None:
        if not 0 <= hubs <= MAX_HUBS:
            raise InvalidValueError(f"an estate has 0 to {MAX_HUBS} hubs, not {hubs}")
        self.hubs = hubs
        self.seed = seed
        self.suppliers = tuple(suppliers)
        self.mix = mix or EstateMix()
        ids = [s.user_id for s in self.suppliers]
        if len(set(ids)) != len(ids):
            raise InvalidValueError("the suppliers of an estate need distinct User IDs")
        for role, what in (("IS", "electricity"), ("GS", "gas")):
            if not any(role in s.roles and s.share > 0 for s in self.suppliers):
                raise InvalidValueError(f"an estate needs a supplier with role {role} ({what})")

    def __len__(self) -> int:
        return self.hubs

    def __iter__(self) -> Iterator[SimHub]:
        return self.iter_hubs()

    def __repr__(self) -> str:
        return f"SyntheticEstate(hubs={self.hubs}, seed={self.seed})"

    @property
    def suppliers_by_id(self) -> dict[UserId, SimSupplier]:
        return {s.user_id: s for s in self.suppliers}

    def iter_hubs(self) -> Iterator[SimHub]:
        """The hubs in order; the same sequence on every call."""
        return _HubFactory(self).generate()


def generate_estate(
    hubs: int,
    seed: int = 0,
    *,
    suppliers: Sequence[SimSupplier] = DEFAULT_SUPPLIERS,
    mix: EstateMix | None = None,
) -> SyntheticEstate:
    """An estate of ``hubs`` Communications Hubs, reproducible from ``seed``."""
    return SyntheticEstate(hubs, seed, suppliers, mix)


def mpan_check_digit(first12: str) -> int:
    """The MPAN core's check digit: weighted sum of the first 12 digits, mod 11, mod 10."""
    if len(first12) != len(_MPAN_WEIGHTS) or not first12.isdigit():
        raise InvalidValueError(f"an MPAN check digit needs 12 digits, got {first12!r}")
    return _check_digit(first12)


def _check_digit(first12: str) -> int:
    tables = _PAIR_TABLES
    total = (
        tables[0][first12[0:2]]
        + tables[1][first12[2:4]]
        + tables[2][first12[4:6]]
        + tables[3][first12[6:8]]
        + tables[4][first12[8:10]]
        + tables[5][first12[10:12]]
    )
    return total % 11 % 10


# Weighted sums of each digit pair at each pair position: 6 look-ups instead of 12 products.
_PAIR_TABLES = tuple(
    {
        f"{pair:02d}": (pair // 10) * _MPAN_WEIGHTS[2 * position]
        + (pair % 10) * _MPAN_WEIGHTS[2 * position + 1]
        for pair in range(100)
    }
    for position in range(6)
)


def _pick(items: Sequence[SimSupplier], cum: Sequence[float], unit: float) -> SimSupplier:
    """The supplier a uniform draw in [0, 1) lands on, weighted by cumulative shares."""
    return items[min(bisect(cum, unit * cum[-1]), len(items) - 1)]


class _HubFactory:
    """Draws hubs from one seeded stream. Kept separate so the estate itself stays immutable."""

    def __init__(self, estate: SyntheticEstate) -> None:
        self.estate = estate
        self.mix = estate.mix
        # Sub-streams from the seed: identifiers must not shift when the mix changes.
        setup = random.Random(f"chfw-estate:{estate.seed}")
        self.mpan_offset = setup.randrange(_SERIAL_SPACE)
        self.mprn_offset = setup.randrange(_SERIAL_SPACE)
        self.rng = random.Random(f"chfw-estate-hubs:{estate.seed}")
        self.device_base = (0x001DA1 << 40) | ((estate.seed & 0xFF) << 32)
        suppliers = estate.suppliers
        self.importers = [s for s in suppliers if s.supplies_electricity and s.share > 0]
        self.exporters = [s for s in suppliers if s.supplies_export and s.share > 0]
        self.gas = [s for s in suppliers if s.supplies_gas and s.share > 0]
        self.import_cum = list(accumulate(s.share for s in self.importers))
        self.export_cum = list(accumulate(s.share for s in self.exporters))
        self.gas_cum = list(accumulate(s.share for s in self.gas))
        self.region_cum = list(accumulate(self.mix.region_weights))

    def generate(self) -> Iterator[SimHub]:
        for index in range(self.estate.hubs):
            yield self.hub(index)

    def hub(self, index: int) -> SimHub:
        rng, mix = self.rng, self.mix
        draw = rng.random
        region = REGIONS[bisect(self.region_cum, draw() * self.region_cum[-1])]
        firmware = None if draw() < mix.no_firmware else INITIAL_FIRMWARE
        supply_draw = draw()
        has_elec = draw() < mix.electricity
        has_gas = draw() < mix.gas
        if not (has_elec or has_gas):
            has_elec = True
        points: list[MeterPoint] = []
        if supply_draw < mix.no_supplier:
            # Meters registered without suppliers, or a CH installed with no meter yet.
            if supply_draw >= mix.no_supplier * mix.no_meters:
                if has_elec:
                    points.append(MeterPoint(self.mpan(index, region), Fuel.ELECTRICITY))
                if has_gas:
                    points.append(MeterPoint(self.mprn(index), Fuel.GAS))
        else:
            importer = None
            if has_elec:
                importer = _pick(self.importers, self.import_cum, draw())
                exporter = None
                if self.exporters and draw() < mix.export:
                    exporter = _pick(self.exporters, self.export_cum, draw())
                points.append(
                    MeterPoint(
                        self.mpan(index, region),
                        Fuel.ELECTRICITY,
                        import_supplier=importer.user_id,
                        export_supplier=None if exporter is None else exporter.user_id,
                    )
                )
            if has_gas:
                if importer is not None and importer.supplies_gas and draw() < mix.dual_fuel:
                    gas_supplier = importer
                else:
                    gas_supplier = _pick(self.gas, self.gas_cum, draw())
                points.append(
                    MeterPoint(self.mprn(index), Fuel.GAS, gas_supplier=gas_supplier.user_id)
                )
        return SimHub(
            index=index,
            device_id=DeviceId((self.device_base | (index + 1)).to_bytes(8, "big")),
            csp_region=region,
            meter_points=tuple(points),
            firmware=firmware,
        )

    def mpan(self, index: int, region: str) -> str:
        serial = (index * _MPAN_MULTIPLIER + self.mpan_offset) % _SERIAL_SPACE
        distributors = _DISTRIBUTORS[region]
        first12 = f"{distributors[serial % len(distributors)]}{serial:010d}"
        return f"{first12}{_check_digit(first12)}"

    def mprn(self, index: int) -> str:
        return f"{(index * _MPRN_MULTIPLIER + self.mprn_offset) % _SERIAL_SPACE:010d}"
