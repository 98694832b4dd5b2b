"""The DSP's Prometheus metrics: counted at the intake, read from the outbox at scrape time,
and the signing certificate's expiry (see :mod:`chfw.shared.metrics` for the list)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from fastapi import FastAPI
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
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

from chfw.core.clock import utc_now
from chfw.dsp.processing import BatchTally
from chfw.dsp.store import campaigns, outbox, stats
from chfw.shared.db.engine import reading
from chfw.shared.metrics import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    buckets,
    database_up,
    install_scrape,
)
from chfw.shared.recent import Recent

if TYPE_CHECKING:
    from cryptography import x509

    from chfw.dsp.processing import ActivationService, SubmissionResult

log = structlog.get_logger("chfw.shared.metrics")

#: Seconds; an intake request is a few ms (one message) to a few s (a batch of 10,000).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Seconds from intake to delivery: sub-second in a healthy wave, hours when retrying.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)
INTAKE_ENDPOINTS = {"/csp/v1/messages": "message", "/csp/v1/messages/batch": "batch"}

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
        for status in ("processed", "duplicate", "malformed", "parked", "conflict", "refused"):
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

    install_scrape(app, metrics.registry)
    app.state.metrics = metrics
    return metrics


class _Middleware:
    """Adapts a ``wrap(app) -> app`` function to Starlette's ``add_middleware``."""

    def __init__(self, app: ASGIApp, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        self._app = wrap(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


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
                suspended = stats.suspended_users(conn)
                attempts = stats.attempts_by_outcome(conn)
                latencies = stats.recent_latencies(conn, now)
                campaign_rows = campaigns.metric_rows(conn)
        except SQLAlchemyError as exc:
            log.warning("metrics_database_unavailable", error=str(exc).splitlines()[0])
            return [database_up(False)]
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
        undelivered, suspension = _per_user(rows, suspended, now)
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
            histogram.add_metric([user], buckets(values, LATENCY_BUCKETS), gsum_value=sum(values))
            for q in (0.5, 0.99):
                found = stats.quantile(values, q)
                if found is not None:
                    quantiles.add_metric([user, str(q)], found)
        families = [
            database_up(True),
            alerts,
            age,
            undelivered,
            suspension,
            attempted,
            recent,
            histogram,
            quantiles,
        ]
        return families + campaign_families(campaign_rows)


def campaign_families(rows: Sequence[tuple[str, str, int]]) -> list[Metric]:
    """Campaigns by state, and the pauses each one's error threshold made."""
    by_state = GaugeMetricFamily("chfw_campaigns", "Firmware campaigns by state", labels=["state"])
    counted: dict[str, int] = {}
    for _, state, _ in rows:
        counted[state] = counted.get(state, 0) + 1
    for state in ("draft", "running", "paused", "completed"):
        by_state.add_metric([state], counted.get(state, 0))
    pauses = CounterMetricFamily(
        "chfw_campaign_auto_pauses",
        "Times a campaign's error threshold paused it",
        labels=["campaign"],
    )
    for name, _, n in rows:
        pauses.add_metric([name], n)
    return [by_state, pauses]


def _per_user(
    rows: Sequence[outbox.CountRow], suspended: dict[str, str | None], now: datetime
) -> tuple[Metric, Metric]:
    """Each Service User's oldest undelivered alert's age, and whether it is suspended."""
    undelivered = GaugeMetricFamily(
        "chfw_outbox_oldest_undelivered_age_seconds",
        "Seconds since the oldest pending (undelivered) alert of each Service User was "
        "made; absent when it has none pending",
        labels=["user_id"],
    )
    for user, seconds in sorted(outbox.oldest_undelivered(rows, now).items()):
        undelivered.add_metric([user], seconds)
    suspension = GaugeMetricFamily(
        "chfw_service_user_suspended",
        "1 while delivery to the Service User is suspended after a run of refusals",
        labels=["user_id"],
    )
    for user, reason in sorted(suspended.items()):
        suspension.add_metric([user], 0 if reason is None else 1)
    return undelivered, suspension
