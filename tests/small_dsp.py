"""A small DSP for tests: migrated database, dev signing identity, estate and users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count

from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId, DuisVersion, Fuel, MeterPoint, UserId
from chfw.core.duis import bundled_schemas
from chfw.core.signing import PemSigner, TrustStore, create_development_identity
from chfw.dsp.alerts import AlertBuilder
from chfw.dsp.estate_file import CspRegion
from chfw.dsp.processing import ActivationService
from chfw.dsp.store import csps, estate, users

DCC = UserId.parse("90-B3-D5-1F-30-00-00-02")
ALICE = UserId.parse("90-B3-D5-1F-30-01-00-00")  # DUIS 5.1: N64
BOB = UserId.parse("90-B3-D5-1F-30-01-00-01")  # DUIS 5.0: N999
CAROL = UserId.parse("90-B3-D5-1F-30-01-00-02")  # registered, not a Service User
CH1 = DeviceId.parse("00-1D-A1-00-00-00-00-01")  # electricity ALICE, gas BOB
CH2 = DeviceId.parse("00-1D-A1-00-00-00-00-02")  # electricity ALICE only
CH3 = DeviceId.parse("00-1D-A1-00-00-00-00-03")  # no supplier
CH4 = DeviceId.parse("00-1D-A1-00-00-00-00-04")  # CAROL only

_KEY_PEM, _CERT_PEM = create_development_identity(common_name="test DSP")
SIGNER = PemSigner.from_pem(_KEY_PEM, _CERT_PEM)
TRUST = TrustStore.from_pem(_CERT_PEM)
KEY_PEM, CERT_PEM = _KEY_PEM, _CERT_PEM


@dataclass
class Dsp:
    engine: Engine
    service: ActivationService
    credential: str


class Sequential:
    """ResponseID counters 1, 2, 3 ... without a database (a CounterSource for tests)."""

    def __init__(self, start: int = 1) -> None:
        self._values = count(start)

    def take(self, n: int, conn: object = None) -> list[int]:
        return [next(self._values) for _ in range(n)]

    def reserve(self, n: int) -> None:
        """Nothing to reserve: values are made on demand."""


def build_dsp(engine: Engine, endpoints: dict[UserId, str] | None = None) -> Dsp:
    endpoints = endpoints or {}
    with engine.begin() as conn:
        credential = csps.add_csp(conn, "north-csp")
        users.add_user(
            conn,
            users.ServiceUser(
                ALICE,
                "Alice Energy",
                frozenset({"IS"}),
                DuisVersion(5, 1),
                endpoints.get(ALICE),
                allow_insecure_http=True,  # test receivers are local http
            ),
        )
        users.add_user(
            conn,
            users.ServiceUser(
                BOB,
                "Bob Gas",
                frozenset({"GS"}),
                DuisVersion(5, 0),
                endpoints.get(BOB),
                allow_insecure_http=True,
            ),
        )
        estate.add_hub(
            conn,
            CH1,
            CspRegion.NORTH,
            [
                MeterPoint("1000000000001", Fuel.ELECTRICITY, import_supplier=ALICE),
                MeterPoint("10000001", Fuel.GAS, gas_supplier=BOB),
            ],
        )
        estate.add_hub(
            conn,
            CH2,
            CspRegion.SOUTH,
            [MeterPoint("1000000000002", Fuel.ELECTRICITY, import_supplier=ALICE)],
        )
        estate.add_hub(conn, CH3, CspRegion.CENTRAL, [])
        estate.add_hub(
            conn,
            CH4,
            CspRegion.CENTRAL,
            [MeterPoint("1000000000004", Fuel.ELECTRICITY, import_supplier=CAROL)],
        )
    builder = AlertBuilder(DCC, SIGNER, bundled_schemas())
    return Dsp(engine, ActivationService(engine, builder, Sequential()), credential)


def fixed_clock() -> datetime:
    return datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
