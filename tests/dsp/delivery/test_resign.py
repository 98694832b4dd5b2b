"""Key rollover (issue 20): every alert goes out signed by the currently configured identity.

A real worker delivers over HTTPS to a real receiver (chfw's own, trusting only the new
certificate) on 127.0.0.1: alerts signed at intake with the old key are re-signed on the way
out (and the re-signed document is kept, so a retry does not sign again), alerts already
signed with the new key are sent as stored, and dead letters replayed go out re-signed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import DeviceId
from chfw.core.duis import ResponseId
from chfw.core.signing import Resigner, Signer, unsigned, verify_document
from chfw.dsp.delivery.reporting import WorkerStats
from chfw.dsp.delivery.worker import Worker
from chfw.dsp.store import outbox
from chfw.dsp.store.schema import outbox as outbox_table
from chfw.shared.config import Settings
from chfw.shared.db.engine import create_engine_for
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import ReceiverConfig
from tests.core.signing.builders import RecordingSigner
from tests.databases import copy_sqlite
from tests.dsp.delivery.conftest import FakeClock
from tests.dsp.delivery.helpers import SUPPLIER_A, add_user, enqueue, row
from tests.dsp.delivery.receiver import free_port
from tests.pki import Pki
from tests.supplier.helpers import DCC, Dsp, Served

OLD = Dsp.create("chfw DSP signer 2025")
NEW = Dsp.create("chfw DSP signer 2026")
HUBS = [DeviceId.parse(f"00-1D-A1-00-00-00-01-{n:02X}") for n in range(1, 7)]


@pytest.fixture
def tls(tmp_path: Path) -> Pki:
    folder = tmp_path / "tls"
    folder.mkdir()
    return Pki.create(folder)


@pytest.fixture
def receiver_engine(tmp_path: Path, migrated_template: Path) -> Iterator[Engine]:
    """The supplier's back office: a database of its own."""
    engine = create_engine_for(copy_sqlite(migrated_template, tmp_path / "supplier.db"))
    yield engine
    engine.dispose()


@pytest.fixture
def supplier(receiver_engine: Engine, tls: Pki) -> Iterator[Served]:
    """chfw's receiver over HTTPS, trusting the new signing certificate only."""
    app = create_receiver_app(ReceiverConfig(trust=NEW.trust), receiver_engine)
    ssl = {"ssl_certfile": str(tls.server_cert), "ssl_keyfile": str(tls.server_key)}
    server = Served(app, ssl=ssl).start()
    yield server
    server.stop()


def n64(dsp: Dsp, hub: DeviceId, counter: int) -> outbox.NewAlert:
    return outbox.NewAlert(
        response_id=str(ResponseId(DCC, hub, counter)),
        user_id=SUPPLIER_A,
        device_id=hub,
        alert_code="N64",
        duis_version="5.1",
        firmware_version="02010300",
        history_id=None,
        document=dsp.n64(device=hub, counter=counter),
    )


def drain(
    engine: Engine, settings: Settings, clock: FakeClock, signer: Signer | None
) -> WorkerStats:
    async def run() -> WorkerStats:
        async with Worker(
            engine, settings, clock=clock, rng=random.Random(3), signer=signer
        ) as worker:
            return await worker.run_until_idle()

    return asyncio.run(run())


def recorded_ids(receiver_engine: Engine) -> set[str]:
    with receiver_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT response_id FROM bo_alerts"))
        return {r[0] for r in rows}


def documents(engine: Engine) -> dict[str, bytes]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_table.c.response_id, outbox_table.c.document))
        return {r.response_id: bytes(r.document) for r in rows}


class TestRollover:
    def test_old_signatures_are_re_signed_current_ones_are_not(
        self,
        engine: Engine,
        settings: Settings,
        clock: FakeClock,
        tls: Pki,
        supplier: Served,
        receiver_engine: Engine,
    ) -> None:
        add_user(
            engine, SUPPLIER_A, supplier.url(), ca_bundle=str(tls.ca), allow_insecure_http=False
        )
        stale = [n64(OLD, hub, 100 + n) for n, hub in enumerate(HUBS[:4])]
        current = [n64(NEW, hub, 200 + n) for n, hub in enumerate(HUBS[4:])]
        enqueue(engine, [*stale, *current], clock())
        before = documents(engine)
        signer = RecordingSigner(NEW.signer)  # type: ignore[arg-type]

        stats = drain(engine, settings, clock, signer)

        assert stats.delivered == 6
        assert stats.resigned == 4
        assert len(signer.signed) == 4  # one signature per stale alert, none for current ones
        assert recorded_ids(receiver_engine) == {a.response_id for a in [*stale, *current]}
        after = documents(engine)
        for alert in stale:  # the same alert (content, ResponseID), a new signature, kept
            assert after[alert.response_id] != before[alert.response_id]
            assert unsigned(after[alert.response_id]) == unsigned(before[alert.response_id])
            verify_document(after[alert.response_id], NEW.trust)
        for alert in current:
            assert after[alert.response_id] == before[alert.response_id]

    def test_a_retry_does_not_sign_again(
        self,
        engine: Engine,
        settings: Settings,
        clock: FakeClock,
        tls: Pki,
        supplier: Served,
        receiver_engine: Engine,
    ) -> None:
        down = f"https://127.0.0.1:{free_port()}/"  # nothing listens: the attempt is retried
        add_user(engine, SUPPLIER_A, down, ca_bundle=str(tls.ca), allow_insecure_http=False)
        (alert,) = [n64(OLD, HUBS[0], 300)]
        enqueue(engine, [alert], clock())
        signer = RecordingSigner(NEW.signer)  # type: ignore[arg-type]

        first = drain(engine, settings, clock, signer)
        assert (first.retried, first.resigned, len(signer.signed)) == (1, 1, 1)
        stored = row(engine, alert.response_id).document
        assert Resigner(NEW.signer).is_current(stored)  # written back with the retry

        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE service_users SET endpoint_url = :url"), {"url": supplier.url()}
            )
        clock.advance(3600)
        second = drain(engine, settings, clock, signer)
        assert (second.delivered, second.resigned, len(signer.signed)) == (1, 0, 1)
        assert row(engine, alert.response_id).document == stored
        assert recorded_ids(receiver_engine) == {alert.response_id}

    def test_dead_letters_replayed_go_out_re_signed(
        self,
        engine: Engine,
        settings: Settings,
        clock: FakeClock,
        tls: Pki,
        supplier: Served,
        receiver_engine: Engine,
    ) -> None:
        """The issue as it was: the receiver refuses the old signature, the row is dead;
        replayed, it is sent again -- now re-signed with the configured identity."""
        add_user(
            engine, SUPPLIER_A, supplier.url(), ca_bundle=str(tls.ca), allow_insecure_http=False
        )
        alerts = [n64(OLD, hub, 400 + n) for n, hub in enumerate(HUBS[:3])]
        ids = enqueue(engine, alerts, clock())

        refused = drain(engine, settings, clock, OLD.signer)  # still the old identity
        assert (refused.rejected, refused.resigned) == (3, 0)
        assert recorded_ids(receiver_engine) == set()
        with engine.begin() as conn:
            assert outbox.replay(conn, ids, "operator", clock()).changed == tuple(ids)

        signer = RecordingSigner(NEW.signer)  # type: ignore[arg-type]
        replayed = drain(engine, settings, clock, signer)
        assert (replayed.delivered, replayed.resigned, len(signer.signed)) == (3, 3, 3)
        assert recorded_ids(receiver_engine) == {a.response_id for a in alerts}

    def test_without_a_signer_documents_go_as_stored(
        self, engine: Engine, settings: Settings, clock: FakeClock, tls: Pki, supplier: Served
    ) -> None:
        add_user(
            engine, SUPPLIER_A, supplier.url(), ca_bundle=str(tls.ca), allow_insecure_http=False
        )
        alert = n64(OLD, HUBS[0], 500)
        enqueue(engine, [alert], clock())
        stats = drain(engine, settings, clock, None)
        assert (stats.rejected, stats.resigned) == (1, 0)
        assert row(engine, alert.response_id).document == alert.document
