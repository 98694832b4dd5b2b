"""Prometheus metrics of both services, scraped over HTTP after a small wave and parsed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import structlog
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from chfw.dsp.intake import create_app
from chfw.dsp.store import outbox
from chfw.dsp.store.outbox import AttemptResult
from chfw.dsp.store.schema import outbox as outbox_table
from chfw.dsp.store.schema import service_users
from chfw.shared.config import Settings
from chfw.shared.db.engine import create_engine_for
from chfw.sim import generate_estate, generate_wave, post_wave
from chfw.sim.wave import InventoryStart
from chfw.supplier.app import create_receiver_app
from chfw.supplier.pipeline import ReceiverConfig
from tests.databases import upgrade
from tests.sim.live import serve
from tests.small_dsp import TRUST
from tests.web.wave import build_service, load_estate, load_wave, settle

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str) -> Samples:
    """Every sample of ``GET /metrics``, keyed by (name, labels)."""
    answer = httpx.get(f"{base}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric over the labels not given."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    structlog.reset_defaults()


class TestIntakeMetrics:
    """After a wave posted over HTTP, the counters match the simulator's ground truth."""

    def test_counts_after_a_wave(self, engine: Engine) -> None:
        synthetic = generate_estate(150, seed=21)
        wave = generate_wave(synthetic, seed=22, inventory_start=InventoryStart.ESTATE)
        credential = load_estate(engine, synthetic)
        app = create_app(Settings(stats_cache_seconds=0), build_service(engine))
        with serve(app) as base:
            stats = post_wave(wave.payloads(), base, credential, batch_size=40, concurrency=2)
            # one malformed message, posted alone
            bad = httpx.post(
                f"{base}/csp/v1/messages",
                content=b"\x00\x01",
                headers={
                    "authorization": f"Bearer {credential}",
                    "content-type": "application/octet-stream",
                },
            )
            assert bad.status_code == 400
            before = scrape(base)
            settle(engine, dead=2, retrying=3)
            after = scrape(base)
        truth = wave.ground_truth
        for status, count in truth.statuses.items():
            assert value(before, "chfw_intake_messages_total", status=status) == count
        assert value(before, "chfw_intake_messages_total", status="malformed") == 1
        assert value(before, "chfw_intake_decode_errors_total") == 1
        for decision, count in truth.decisions.items():
            assert value(before, "chfw_intake_decisions_total", decision=decision) == count
        for code, count in truth.alerts.items():
            assert value(before, "chfw_intake_alerts_total", alert_code=code) == count
            assert total(before, "chfw_outbox_alerts", alert_code=code, state="waiting") == count
        batches = stats.batches
        assert value(before, "chfw_intake_responses_total", endpoint="batch", code="200") == batches
        assert value(before, "chfw_intake_responses_total", endpoint="message", code="400") == 1
        assert value(before, "chfw_intake_request_seconds_count", endpoint="batch") == batches
        assert value(before, "chfw_metrics_database_up") == 1

        alerts = sum(truth.alerts.values())
        assert total(after, "chfw_outbox_alerts", state="dead") == 2
        assert total(after, "chfw_outbox_alerts", state="retrying") == 3
        assert total(after, "chfw_outbox_alerts", state="delivered") == alerts - 5
        assert value(after, "chfw_delivery_attempts_total", outcome="rejected") == 2
        assert value(after, "chfw_delivery_attempts_total", outcome="retry") == 3
        assert total(after, "chfw_outbox_delivered_recent") == alerts - 5
        with engine.connect() as conn:
            per_user = Counter(
                dict(
                    conn.execute(
                        sa.select(outbox_table.c.user_id, sa.func.count())
                        .where(outbox_table.c.state == "delivered")
                        .group_by(outbox_table.c.user_id)
                    ).all()
                )
            )
        for user, count in per_user.items():
            assert value(after, "chfw_outbox_delivered_recent", user_id=user) == count
            buckets = {
                dict(ls)["le"]: v
                for (n, ls), v in after.items()
                if n == "chfw_intake_to_delivery_recent_seconds_bucket"
                and dict(ls)["user_id"] == user
            }
            assert buckets["+Inf"] == count
            assert buckets["0.1"] == 0  # settle() delivers 0.2-6 s after intake
            assert buckets["10.0"] == count
            p50 = value(
                after,
                "chfw_intake_to_delivery_recent_quantile_seconds",
                user_id=user,
                quantile="0.5",
            )
            assert 0.2 <= p50 <= 6.0

    def test_oldest_due_age(self, engine: Engine) -> None:
        loaded = load_wave(engine, 40, spread_seconds=120)
        app = create_app(Settings(stats_cache_seconds=0), loaded.service)
        with serve(app) as base:
            samples = scrape(base)
        with engine.connect() as conn:
            oldest = conn.execute(sa.select(sa.func.min(outbox_table.c.created_at))).scalar_one()
            assert outbox.counts(conn)["pending"] > 0
        assert oldest is not None
        assert value(samples, "chfw_outbox_oldest_due_age_seconds") >= 100  # written ~2 min ago

    def test_oldest_undelivered_per_user_counts_retries_and_suspension(
        self, engine: Engine
    ) -> None:
        """During an outage every alert waits for a later retry: none is *due*, yet the oldest
        undelivered age grows (issue 23: an alert on the due age would never fire)."""
        loaded = load_wave(engine, 40, spread_seconds=120)
        later = datetime.now(UTC) + timedelta(hours=1)
        with engine.begin() as conn:
            pending = outbox.list_rows(conn, state="pending", limit=100_000)
            outbox.record_results(
                conn,
                [
                    AttemptResult(r.id, "retry", r.created_at, 503, "503", 1.0, later)
                    for r in pending
                ],
            )
            user = pending[0].user_id
            conn.execute(
                sa.update(service_users)
                .where(service_users.c.user_id == user)
                .values(suspended_at=later, suspended_reason="refused")
            )
        app = create_app(Settings(stats_cache_seconds=0), loaded.service)
        with serve(app) as base:
            samples = scrape(base)
        assert value(samples, "chfw_outbox_oldest_due_age_seconds") == 0  # nothing due
        for member in {r.user_id for r in pending}:
            oldest = min(r.created_at for r in pending if r.user_id == member)
            age = value(samples, "chfw_outbox_oldest_undelivered_age_seconds", user_id=member)
            assert (datetime.now(UTC) - oldest).total_seconds() >= age >= 100
            retrying = total(samples, "chfw_outbox_alerts", user_id=member, state="retrying")
            assert retrying == sum(r.user_id == member for r in pending)
            flag = value(samples, "chfw_service_user_suspended", user_id=member)
            assert flag == (1 if member == user else 0)

    def test_database_down_is_reported_not_raised(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'x.db'}"
        upgrade(url)
        engine = create_engine_for(url)
        app = create_app(Settings(stats_cache_seconds=0), build_service(engine))
        with serve(app) as base:
            (tmp_path / "x.db").unlink()
            engine.dispose()
            with engine.begin() as conn:  # an empty file without tables
                conn.execute(sa.text("select 1"))
            samples = scrape(base)
        engine.dispose()
        assert value(samples, "chfw_metrics_database_up") == 0
        assert value(samples, "chfw_intake_messages_total", status="processed") == 0


@pytest.fixture
def receiver_base(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'backoffice.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    app = create_receiver_app(ReceiverConfig(trust=TRUST, max_bytes=64 * 1024), engine)
    with serve(app) as base:
        yield base, engine
    engine.dispose()


class TestReceiverMetrics:
    """Verified, duplicate, refused and oversized posts are counted apart."""

    def test_counts(self, engine: Engine, receiver_base: tuple[str, Engine]) -> None:
        base, _ = receiver_base
        loaded = load_wave(engine, 60)
        user = loaded.synthetic.suppliers[0].user_id
        with engine.connect() as conn:
            documents = [
                bytes(d)
                for d in conn.execute(
                    sa.select(outbox_table.c.document).where(outbox_table.c.user_id == user.hex)
                ).scalars()
            ]
        assert documents
        headers = {"content-type": "application/xml"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            for document in documents:
                assert client.post("/", content=document).status_code == 204
            assert client.post("/", content=documents[0]).status_code == 204  # a replay
            tampered = documents[0].replace(b"02010300", b"02010301", 1)
            assert client.post("/", content=tampered).status_code == 400
            assert client.post("/", content=b"x" * (65 * 1024)).status_code == 413
        samples = scrape(base)
        n = len(documents)
        assert value(samples, "chfw_receiver_received_total") == n + 3
        assert value(samples, "chfw_receiver_posts_total", result="verified") == n
        assert value(samples, "chfw_receiver_posts_total", result="duplicate") == 1
        assert value(samples, "chfw_receiver_posts_total", result="rejected") == 1
        assert value(samples, "chfw_receiver_posts_total", result="too_large") == 1
        assert value(samples, "chfw_receiver_verified_total", alert_code="N64") == n
        assert value(samples, "chfw_receiver_check_seconds_count") == n + 3
        assert value(samples, "chfw_backoffice_alerts", alert_code="N64") == n
        assert value(samples, "chfw_backoffice_rejections") == 2
