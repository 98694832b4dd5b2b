"""A simulated wave through chfw's real intake (in process, SQLite) ends as its ground truth."""

from __future__ import annotations

import io
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chfw.core.domain import UserId
from chfw.core.duis import bundled_schemas
from chfw.dsp.alerts import AlertBuilder
from chfw.dsp.estate_file import EstateRecord, parse_csv
from chfw.dsp.intake import create_app
from chfw.dsp.processing import ActivationService
from chfw.dsp.store import csps, estate, users
from chfw.dsp.store.schema import outbox
from chfw.dsp.store.users import ServiceUser
from chfw.shared.config import Settings
from chfw.sim import generate_estate, generate_wave, post_wave, write_estate_csv
from tests.small_dsp import Sequential


@pytest.fixture
def loaded(engine: Engine) -> tuple[Engine, str]:
    """The engine with a simulated estate of 400 CHs, its suppliers and a CSP credential."""
    synthetic = generate_estate(400, seed=61)
    text = io.StringIO()
    write_estate_csv(synthetic, text)
    text.seek(0)
    records = [item for item in parse_csv(text) if isinstance(item, EstateRecord)]
    with engine.begin() as conn:
        estate.import_records(conn, records)
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
        credential = csps.add_csp(conn, "sim-north")
    return engine, credential


class TestAgainstIntake:
    """The simulator's ground truth holds for chfw's own pipeline."""

    def test_wave_through_the_real_intake(self, loaded: tuple[Engine, str]) -> None:
        engine, credential = loaded
        builder = AlertBuilder(
            dcc_user=UserId.parse("90-B3-D5-1F-30-00-00-02"),
            signer=None,
            schemas=bundled_schemas(),
        )
        app = create_app(Settings(), ActivationService(engine, builder, Sequential()))
        wave = generate_wave(generate_estate(400, seed=61), seed=62)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://intake.test"
        )
        stats = post_wave(
            wave.payloads(), "http://intake.test", credential, batch_size=100, client=client
        )
        truth = wave.ground_truth
        assert stats.failed_messages == 0
        assert dict(stats.statuses) == {k: v for k, v in truth.statuses.items() if v}
        assert dict(stats.decisions) == {k: v for k, v in truth.decisions.items() if v}
        assert dict(stats.alerts) == {k: v for k, v in truth.alerts.items() if v}
        with engine.connect() as conn:
            rows = conn.execute(sa.select(outbox.c.user_id, outbox.c.alert_code)).all()
            distribution = estate.firmware_distribution(conn)
        written = Counter((UserId.parse(user), code) for user, code in rows)
        for user, counts in truth.alerts_by_recipient.items():
            for code, count in counts.items():
                assert written[(UserId.parse(user), code)] == count
        assert distribution == truth.firmware_distribution
