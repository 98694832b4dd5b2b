"""TLS verification on delivery: the endpoint's certificate must chain to a configured CA."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from chfw.shared.config import Settings
from tests.dsp.delivery.conftest import FakeClock, Pki
from tests.dsp.delivery.helpers import SUPPLIER_A, add_user, alert, drain, enqueue, row
from tests.dsp.delivery.receiver import ScriptedReceiver


@pytest.fixture
def https_receiver(pki: Pki) -> Iterator[ScriptedReceiver]:
    """A receiver on https://localhost whose certificate a private CA issued (no client cert)."""
    server = ScriptedReceiver(
        ssl={"ssl_certfile": str(pki.server_cert), "ssl_keyfile": str(pki.server_key)}
    ).start()
    yield server
    server.stop()


class TestCaBundle:
    """delivery_ca_bundle (or the user's own) decides which endpoint certificates are trusted."""

    def test_delivered_with_the_ca_bundle_configured(
        self,
        engine: Engine,
        settings: Settings,
        https_receiver: ScriptedReceiver,
        pki: Pki,
        clock: FakeClock,
    ) -> None:
        add_user(engine, SUPPLIER_A, https_receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        stats = drain(engine, settings.replace(delivery_ca_bundle=str(pki.ca)), clock)
        assert stats.delivered == 1
        assert row(engine, outbox_id).row.state == "delivered"
        assert len(https_receiver.received) == 1

    def test_system_trust_store_refuses_a_private_ca(
        self, engine: Engine, settings: Settings, https_receiver: ScriptedReceiver, clock: FakeClock
    ) -> None:
        add_user(engine, SUPPLIER_A, https_receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        stats = drain(engine, settings, clock)
        detail = row(engine, outbox_id)
        assert (stats.delivered, stats.retried) == (0, 1)
        assert detail.row.state == "pending"  # retried later: an operator can fix the trust
        assert detail.row.last_error is not None
        assert "TLS" in detail.row.last_error
        assert "not trusted" in detail.row.last_error
        assert https_receiver.received == []  # the document never left

    def test_another_ca_is_refused(
        self,
        engine: Engine,
        settings: Settings,
        https_receiver: ScriptedReceiver,
        pki: Pki,
        clock: FakeClock,
    ) -> None:
        add_user(engine, SUPPLIER_A, https_receiver.url())
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        stats = drain(engine, settings.replace(delivery_ca_bundle=str(pki.other_ca)), clock)
        assert stats.retried == 1
        error = row(engine, outbox_id).row.last_error
        assert error is not None
        assert "not trusted" in error
        assert https_receiver.received == []

    def test_users_bundle_wins_over_the_setting(
        self,
        engine: Engine,
        settings: Settings,
        https_receiver: ScriptedReceiver,
        pki: Pki,
        clock: FakeClock,
    ) -> None:
        add_user(engine, SUPPLIER_A, https_receiver.url(), ca_bundle=str(pki.ca))
        enqueue(engine, [alert("R-1")], clock.now)
        stats = drain(engine, settings.replace(delivery_ca_bundle=str(pki.other_ca)), clock)
        assert stats.delivered == 1

    def test_host_name_is_checked(
        self,
        engine: Engine,
        settings: Settings,
        https_receiver: ScriptedReceiver,
        pki: Pki,
        clock: FakeClock,
    ) -> None:
        url = https_receiver.url().replace("localhost", "127.0.0.1")  # not in the certificate
        add_user(engine, SUPPLIER_A, url)
        (outbox_id,) = enqueue(engine, [alert("R-1")], clock.now)
        stats = drain(engine, settings.replace(delivery_ca_bundle=str(pki.ca)), clock)
        assert stats.retried == 1
        error = row(engine, outbox_id).row.last_error
        assert error is not None
        assert "TLS" in error
        assert "127.0.0.1" in error
        assert https_receiver.received == []
