"""The supplier receiver's Prometheus metrics: counted as POSTs are answered, and the back
office's figures read at scrape time (see :mod:`chfw.shared.metrics` for the list)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client.core import (
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from chfw.shared.db.engine import reading
from chfw.shared.metrics import database_up, install_scrape
from chfw.shared.recent import Recent

if TYPE_CHECKING:
    from chfw.supplier.pipeline import Outcome

log = structlog.get_logger("chfw.shared.metrics")

CHECK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)

# --- supplier receiver ------------------------------------------------------------------------


class ReceiverMetrics:
    """The receiver's counters and timing, and the back office figures, in one registry."""

    RESULTS = ("verified", "duplicate", "rejected", "too_large", "unrecorded")

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter("chfw_receiver_received", "Alert POSTs received", registry=r)
        self.posts = Counter(
            "chfw_receiver_posts", "Alert POSTs by what became of them", ["result"], registry=r
        )
        self.verified = Counter(
            "chfw_receiver_verified",
            "Alerts verified and recorded (first receipt), by DCC alert code",
            ["alert_code"],
            registry=r,
        )
        self.check_seconds = Histogram(
            "chfw_receiver_check_seconds",
            "Time to read, verify (signature) and validate (schema) one POST",
            buckets=CHECK_BUCKETS,
            registry=r,
        )
        self.handshake_failures = Counter(
            "chfw_receiver_tls_handshake_failures",
            "TLS handshakes that failed (e.g. no client certificate under mutual TLS), by "
            "OpenSSL's reason",
            ["reason"],
            registry=r,
        )
        # Children looked up once: ``labels()`` costs a lock and a dict walk per call,
        # paid per alert.
        self._posts = {result: self.posts.labels(result) for result in self.RESULTS}
        self._verified: dict[str, Any] = {}

    def checked(self, seconds: float) -> None:
        self.received.inc()
        self.check_seconds.observe(seconds)

    def handshake_failed(self, reason: str) -> None:
        self.handshake_failures.labels(reason).inc()

    def unrecorded(self) -> None:
        self._posts["unrecorded"].inc()

    def answered(self, outcome: Outcome) -> None:
        """Count one answered POST by its :class:`~chfw.supplier.pipeline.Outcome`."""
        if outcome.status == 413:
            self._posts["too_large"].inc()
        elif outcome.status >= 400:
            self._posts["rejected"].inc()
        elif outcome.duplicate:
            self._posts["duplicate"].inc()
        else:
            self._posts["verified"].inc()
            if outcome.facts is not None:
                code = outcome.facts.alert_code
                child = self._verified.get(code)
                if child is None:
                    child = self._verified[code] = self.verified.labels(code)
                child.inc()


class BackOfficeCollector(Collector):
    """What the supplier's back office holds, read at scrape time."""

    def __init__(self, engine: Engine, *, min_interval: float = 5.0) -> None:
        self.engine = engine
        self._cache: Recent[list[Metric]] = Recent(min_interval)

    def collect(self) -> Iterator[Metric]:
        yield from self._cache.get("families", self._read)

    def _read(self) -> list[Metric]:
        from chfw.supplier import backoffice
        from chfw.supplier.schema import bo_hubs, bo_rejections

        try:
            with reading(self.engine) as conn:
                alerts = backoffice.alert_counts(conn)
                rejections = conn.execute(
                    sa.select(sa.func.count()).select_from(bo_rejections)
                ).scalar_one()
                pending = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(bo_hubs)
                    .where(bo_hubs.c.lookup_pending.is_(True))
                ).scalar_one()
        except SQLAlchemyError as exc:
            log.warning("metrics_database_unavailable", error=str(exc).splitlines()[0])
            return [database_up(False)]
        stored = GaugeMetricFamily(
            "chfw_backoffice_alerts", "Alerts stored, by DCC alert code", labels=["alert_code"]
        )
        for code, count in sorted(alerts.items()):
            stored.add_metric([code], count)
        return [
            database_up(True),
            stored,
            GaugeMetricFamily(
                "chfw_backoffice_rejections", "Refused POSTs recorded", value=int(rejections)
            ),
            GaugeMetricFamily(
                "chfw_backoffice_lookups_pending",
                "CHs whose version (after an N999) is still to be fetched from the DSP",
                value=int(pending),
            ),
        ]


def install_receiver_metrics(
    app: FastAPI, engine: Engine, *, min_interval: float = 5.0
) -> ReceiverMetrics:
    """Serve ``GET /metrics`` on the receiver app; the app counts through the returned object."""
    metrics = ReceiverMetrics()
    metrics.registry.register(BackOfficeCollector(engine, min_interval=min_interval))

    install_scrape(app, metrics.registry)
    return metrics
