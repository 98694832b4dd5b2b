"""A DSP with a simulated wave loaded, and a supplier back office fed with the DSP's own alerts.

The wave is processed by the real :class:`ActivationService` under a clock
that steps forward with each batch, so outcomes spread over the last
``spread_seconds`` (charts get a time axis). Delivery is simulated through the
outbox's own settle functions: most alerts delivered a little after they were
written, a few retrying, a few dead letters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import UserId
from chfw.core.duis import bundled_schemas
from chfw.demo.run import seed_hubs
from chfw.dsp.alerts import AlertBuilder
from chfw.dsp.processing import ActivationService
from chfw.dsp.store import csps, outbox, users
from chfw.dsp.store.schema import outbox as outbox_table
from chfw.dsp.store.users import ServiceUser
from chfw.sim import generate_estate, generate_wave
from chfw.sim.estate import SyntheticEstate
from chfw.sim.wave import InventoryStart, Wave
from chfw.supplier import pilots
from chfw.supplier.pipeline import AlertReceiver, ReceiverConfig
from tests.small_dsp import DCC, SIGNER, TRUST, Sequential

PILOT = "wave-pilot"


@dataclass
class LoadedDsp:
    """The engine, the service that processed the wave, the wave (ground truth), a credential."""

    engine: Engine
    service: ActivationService
    synthetic: SyntheticEstate
    wave: Wave
    credential: str
    ended_at: datetime


class SteppingClock:
    """Each call is ``step`` later than the one before: one batch after another."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        moment = self.now
        self.now += self.step
        return moment


def build_service(engine: Engine, clock: SteppingClock | None = None) -> ActivationService:
    builder = AlertBuilder(DCC, SIGNER, bundled_schemas())
    if clock is None:
        return ActivationService(engine, builder, Sequential())
    return ActivationService(engine, builder, Sequential(), clock=clock)


def load_estate(engine: Engine, synthetic: SyntheticEstate) -> str:
    """CHs at their starting firmware (as the demo loads them), Service Users, a CSP credential."""
    with engine.begin() as conn:
        seed_hubs(conn, list(synthetic))
        for supplier in synthetic.suppliers:
            users.upsert_user(
                conn,
                ServiceUser(
                    user_id=supplier.user_id,
                    name=supplier.name,
                    roles=supplier.roles,
                    duis_version=supplier.duis_version,
                ),
            )
        return csps.add_csp(conn, "sim-csp")


def load_wave(
    engine: Engine,
    hubs_count: int = 200,
    seed: int = 3,
    *,
    batch: int = 50,
    spread_seconds: float = 600.0,
    end: datetime | None = None,
) -> LoadedDsp:
    """Load an estate and push its whole wave through the activation service (no HTTP)."""
    synthetic = generate_estate(hubs_count, seed)
    wave = generate_wave(synthetic, seed=seed + 1, inventory_start=InventoryStart.ESTATE)
    credential = load_estate(engine, synthetic)
    payloads = list(wave.payloads())
    batches = max(1, -(-len(payloads) // batch))
    end = end or datetime.now(UTC)
    step = timedelta(seconds=spread_seconds / batches)
    clock = SteppingClock(end - step * batches, step)
    service = build_service(engine, clock)
    for start in range(0, len(payloads), batch):
        service.submit(payloads[start : start + batch], "sim-csp")
    service.clock = lambda: datetime.now(UTC)
    return LoadedDsp(engine, service, synthetic, wave, credential, clock.now)


def settle(engine: Engine, *, dead: int = 3, retrying: int = 4, seed: int = 9) -> dict[str, int]:
    """Deliver every pending alert 0.2-6 s after it was written, except ``dead`` dead letters
    (refused with 400) and ``retrying`` alerts that failed once; returns the counts made."""
    rng = random.Random(seed)
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(outbox_table.c.id, outbox_table.c.created_at)
            .where(outbox_table.c.state == "pending")
            .order_by(outbox_table.c.id)
        ).all()
        results: list[outbox.AttemptResult] = []
        for index, (row_id, created) in enumerate(rows):
            written = created.replace(tzinfo=UTC) if created.tzinfo is None else created
            at = written + timedelta(seconds=rng.uniform(0.2, 6.0))
            if index < dead:
                results.append(
                    outbox.AttemptResult(
                        row_id, "rejected", at, 400, "400 Bad Request: schema", 12.0
                    )
                )
            elif index < dead + retrying:
                results.append(
                    outbox.AttemptResult(
                        row_id,
                        "retry",
                        at,
                        503,
                        "503 Service Unavailable",
                        30.0,
                        next_attempt_at=at + timedelta(hours=2),
                    )
                )
            else:
                results.append(outbox.AttemptResult(row_id, "delivered", at, 204, None, 8.0))
        outbox.record_results(conn, results)
    return {"dead": dead, "retrying": retrying, "delivered": len(rows) - dead - retrying}


def feed_supplier(
    dsp_engine: Engine, supplier_engine: Engine, user: UserId, *, tampered: int = 0
) -> int:
    """Give the supplier's receiver every alert the DSP wrote for ``user``, as the worker would,
    after ``tampered`` copies with a changed byte (refused: bad signature); returns how many
    alerts it accepted."""
    receiver = AlertReceiver(ReceiverConfig(trust=TRUST), supplier_engine)
    with dsp_engine.connect() as conn:
        documents = [
            bytes(d)
            for d in conn.execute(
                sa.select(outbox_table.c.document)
                .where(outbox_table.c.user_id == user.hex)
                .order_by(outbox_table.c.id)
            ).scalars()
        ]
    for document in documents[:tampered]:
        receiver.receive(document.replace(b"02010300", b"02010301", 1), "192.0.2.7")
    return sum(receiver.receive(document, "127.0.0.1").accepted for document in documents)


def create_pilot(supplier_engine: Engine, loaded: LoadedDsp, user: UserId, size: int = 60) -> int:
    """A pilot of the wave's target on (up to) ``size`` of ``user``'s CHs; returns the cohort."""
    cohort = [hub.device_id for hub in loaded.synthetic if user in hub.responsible_suppliers][:size]
    with supplier_engine.begin() as conn:
        pilots.create_pilot(
            conn,
            PILOT,
            loaded.wave.target_version,
            cohort,
            datetime.now(UTC),
            description=f"The wave on {len(cohort)} of our CHs",
        )
    return len(cohort)
