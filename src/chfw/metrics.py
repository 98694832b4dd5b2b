"""Prometheus metrics: ``GET /metrics`` on the intake (`chfw serve`) and on the supplier receiver.

Each app has its own registry (several apps in one test process never
collide). Two kinds of figures:

**Counted in the serving process** as requests are answered:

- ``chfw_intake_messages_total{status}`` -- processed, duplicate, malformed, parked
- ``chfw_intake_decisions_total{decision}`` -- new_version, same_version, failure, pending, stale,
  version_not_carriable (a new version longer than DUIS carries: recorded, no alert sent)
- ``chfw_intake_decode_errors_total`` -- GBCS messages that could not be decoded
- ``chfw_intake_alerts_total{alert_code}`` -- alerts written to the outbox, N64 / N999
- ``chfw_intake_request_seconds{endpoint}`` (histogram) and
  ``chfw_intake_responses_total{endpoint,code}`` -- the CSP endpoints (message, batch)
- ``chfw_receiver_posts_total{result}`` -- verified, duplicate, rejected (400),
  too_large (413), unrecorded (500); ``chfw_receiver_verified_total{alert_code}``;
  ``chfw_receiver_check_seconds`` (histogram: read, verify, validate one POST)

**Read from the database at scrape time** (:class:`OutboxCollector`,
:class:`BackOfficeCollector`). Delivery workers run as separate processes,
any number of them; their work is all in the outbox and the attempt log, so
the intake reports it from there and the figures are right however many
workers run, with nothing to aggregate and nothing lost when a worker
restarts. A scrape costs a few aggregate queries, so results are kept for
``min_interval`` seconds (5 by default), or ten times as long as the last read
took if that is longer (:class:`chfw.recent.Recent`: a read that takes 2 s over
a big outbox is made at most every 20 s), one read at a time:

- ``chfw_outbox_alerts{alert_code,user_id,state}`` -- state waiting (pending, never tried),
  retrying (pending, tried), delivered, dead
- ``chfw_outbox_oldest_due_age_seconds`` -- how long the longest-waiting due alert has waited
- ``chfw_outbox_delivered_recent{user_id}`` -- delivered in the last hour
- ``chfw_delivery_attempts_total{outcome}`` -- delivered, retry, rejected, dead
- ``chfw_intake_to_delivery_recent_seconds{user_id}`` -- a gauge histogram of the
  intake-to-delivery latency of the last hour's deliveries, and
  ``chfw_intake_to_delivery_recent_quantile_seconds{user_id,quantile}`` (0.5, 0.99)
- ``chfw_backoffice_alerts{alert_code}``, ``chfw_backoffice_rejections``,
  ``chfw_backoffice_lookups_pending`` (supplier side)
- ``chfw_metrics_database_up`` -- 0 when the last read failed (the figures are then absent)

**Computed at scrape time** from the intake's signing certificate (:class:`SigningCollector`):

- ``chfw_signing_certificate_expiry_seconds{issuer,serial}`` -- seconds until the
  certificate's notAfter (negative once expired); alert on it falling below 30 days
  (2592000): see docs/deployment.md, key rollover
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from chfw.clock import utc_now
from chfw.processing import BatchTally
from chfw.recent import Recent
from chfw.store import outbox, stats
from chfw.store.engine import reading

if TYPE_CHECKING:
    from cryptography import x509

    from chfw.processing import ActivationService, SubmissionResult
    from chfw.receiver.pipeline import Outcome

log = structlog.get_logger("chfw.metrics")

# No ``*_created`` series: they double the output and no chfw dashboard or alert uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Seconds; an intake request is a few ms (one message) to a few s (a batch of 10,000).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
CHECK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
#: Seconds from intake to delivery: sub-second in a healthy wave, hours when retrying.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)
INTAKE_ENDPOINTS = {"/csp/v1/messages": "message", "/csp/v1/messages/batch": "batch"}


def metrics_response(registry: CollectorRegistry) -> Response:
    """The text exposition format of everything in ``registry``."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# --- DSP intake -------------------------------------------------------------------------------


class IntakeMetrics:
    """The intake's own counters and timings, and the outbox figures, in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "chfw_intake_messages", "CSP messages by result", ["status"], registry=r
        )
        self.decisions = Counter(
            "chfw_intake_decisions", "Processed outcomes by decision", ["decision"], registry=r
        )
        self.decode_errors = Counter(
            "chfw_intake_decode_errors", "GBCS messages that could not be decoded", registry=r
        )
        self.alerts = Counter(
            "chfw_intake_alerts", "Alerts written to the outbox", ["alert_code"], registry=r
        )
        self.responses = Counter(
            "chfw_intake_responses",
            "Answers of the CSP endpoints by HTTP status",
            ["endpoint", "code"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "chfw_intake_request_seconds",
            "Time to answer a CSP request",
            ["endpoint"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        for status in ("processed", "duplicate", "malformed", "parked", "conflict"):
            self.messages.labels(status)
        for code in ("N64", "N999"):
            self.alerts.labels(code)

    def observe(self, results: Sequence[SubmissionResult]) -> None:
        """Count one processed batch (an :class:`ActivationService` observer)."""
        # Added up first: one labelled increment per kind, not several per message.
        tally = BatchTally.of(results)
        for status, count in tally.statuses.items():
            self.messages.labels(status).inc(count)
        if tally.statuses["malformed"]:
            self.decode_errors.inc(tally.statuses["malformed"])
        for decision, count in tally.decisions.items():
            self.decisions.labels(decision).inc(count)
        for code, count in tally.alerts.items():
            if count:
                self.alerts.labels(code).inc(count)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Time the CSP endpoints and count their answers (other paths pass untouched)."""

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            endpoint = (
                INTAKE_ENDPOINTS.get(scope.get("path", "")) if scope["type"] == "http" else None
            )
            if endpoint is None:
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                self.request_seconds.labels(endpoint).observe(time.perf_counter() - started)
                self.responses.labels(endpoint, str(status)).inc()

        return timed


def install_intake_metrics(
    app: FastAPI,
    service: ActivationService,
    *,
    clock: Callable[[], datetime] = utc_now,
    min_interval: float = 5.0,
) -> IntakeMetrics:
    """Count the service's results, time the CSP endpoints, serve ``GET /metrics``."""
    metrics = IntakeMetrics()
    metrics.registry.register(
        OutboxCollector(service.engine, clock=clock, min_interval=min_interval)
    )
    signer = service.builder.signer
    if signer is not None:
        metrics.registry.register(SigningCollector(signer.certificate, clock=clock))
    service.observers.append(metrics.observe)
    app.add_middleware(_Middleware, wrap=metrics.middleware)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def scrape() -> Response:
        return metrics_response(metrics.registry)

    app.state.metrics = metrics
    return metrics


class _Middleware:
    """Adapts a ``wrap(app) -> app`` function to Starlette's ``add_middleware``."""

    def __init__(self, app: ASGIApp, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        self._app = wrap(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def _database_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "chfw_metrics_database_up",
        "1 when the last read of the database succeeded",
        value=1 if up else 0,
    )


class SigningCollector(Collector):
    """How long the DSP's signing certificate has left, computed at each scrape."""

    def __init__(
        self, certificate: x509.Certificate, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.certificate = certificate
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "chfw_signing_certificate_expiry_seconds",
            "Seconds until the signing certificate's notAfter (negative once expired)",
            labels=["issuer", "serial"],
        )
        left = self.certificate.not_valid_after_utc - self.clock()
        family.add_metric(
            [self.certificate.issuer.rfc4514_string(), str(self.certificate.serial_number)],
            round(left.total_seconds()),
        )
        yield family


class OutboxCollector(Collector):
    """Delivery figures read from the outbox and the attempt log at scrape time."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utc_now,
        min_interval: float = 5.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self._cache: Recent[list[Metric]] = Recent(min_interval)

    def collect(self) -> Iterator[Metric]:
        yield from self._cache.get("families", self._read)

    def _read(self) -> list[Metric]:
        now = self.clock()
        try:
            with reading(self.engine) as conn:
                rows = outbox.counts_by(conn)
                oldest = outbox.oldest_due_age(conn, now)
                attempts = stats.attempts_by_outcome(conn)
                latencies = stats.recent_latencies(conn, now)
        except SQLAlchemyError as exc:
            log.warning("metrics_database_unavailable", error=str(exc).splitlines()[0])
            return [_database_up(False)]
        alerts = GaugeMetricFamily(
            "chfw_outbox_alerts",
            "Alerts in the outbox by code, Service User and state "
            "(waiting + retrying = the outbox's pending)",
            labels=["alert_code", "user_id", "state"],
        )
        for row in rows:
            if row.state == "pending":
                alerts.add_metric(
                    [row.alert_code, row.user_id, "waiting"], row.count - row.retrying
                )
                alerts.add_metric([row.alert_code, row.user_id, "retrying"], row.retrying)
            else:
                alerts.add_metric([row.alert_code, row.user_id, row.state], row.count)
        age = GaugeMetricFamily(
            "chfw_outbox_oldest_due_age_seconds",
            "Seconds the longest-waiting due alert has been due (0: none due)",
            value=oldest or 0.0,
        )
        attempted = CounterMetricFamily(
            "chfw_delivery_attempts", "Delivery attempts by outcome", labels=["outcome"]
        )
        for outcome in sorted(outbox.OUTCOMES | set(attempts)):
            attempted.add_metric([outcome], attempts.get(outcome, 0))
        recent = GaugeMetricFamily(
            "chfw_outbox_delivered_recent",
            "Alerts delivered in the last hour, per Service User",
            labels=["user_id"],
        )
        histogram = GaugeHistogramMetricFamily(
            "chfw_intake_to_delivery_recent_seconds",
            "Intake-to-delivery latency of the last hour's deliveries",
            labels=["user_id"],
        )
        quantiles = GaugeMetricFamily(
            "chfw_intake_to_delivery_recent_quantile_seconds",
            "Intake-to-delivery latency quantiles of the last hour's deliveries",
            labels=["user_id", "quantile"],
        )
        for user, values in sorted(latencies.items()):
            recent.add_metric([user], len(values))
            histogram.add_metric([user], _buckets(values, LATENCY_BUCKETS), gsum_value=sum(values))
            for q in (0.5, 0.99):
                found = stats.quantile(values, q)
                if found is not None:
                    quantiles.add_metric([user, str(q)], found)
        return [_database_up(True), alerts, age, attempted, recent, histogram, quantiles]


def _buckets(sorted_values: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative bucket counts of sorted values, with +Inf."""
    out: list[tuple[str, float]] = []
    index = 0
    for bound in bounds:
        while index < len(sorted_values) and sorted_values[index] <= bound:
            index += 1
        out.append((f"{float(bound)}", float(index)))
    out.append(("+Inf", float(len(sorted_values))))
    return out


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
        # Children looked up once: ``labels()`` costs a lock and a dict walk per call,
        # paid per alert.
        self._posts = {result: self.posts.labels(result) for result in self.RESULTS}
        self._verified: dict[str, Any] = {}

    def checked(self, seconds: float) -> None:
        self.received.inc()
        self.check_seconds.observe(seconds)

    def unrecorded(self) -> None:
        self._posts["unrecorded"].inc()

    def answered(self, outcome: Outcome) -> None:
        """Count one answered POST by its :class:`~chfw.receiver.pipeline.Outcome`."""
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
        from chfw.receiver import backoffice
        from chfw.receiver.schema import bo_hubs, bo_rejections

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
            return [_database_up(False)]
        stored = GaugeMetricFamily(
            "chfw_backoffice_alerts", "Alerts stored, by DCC alert code", labels=["alert_code"]
        )
        for code, count in sorted(alerts.items()):
            stored.add_metric([code], count)
        return [
            _database_up(True),
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

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def scrape() -> Response:
        return metrics_response(metrics.registry)

    return metrics
