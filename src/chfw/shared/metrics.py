"""Prometheus metrics: ``GET /metrics`` on the intake (`chfw serve`) and on the supplier receiver.

This module holds what both products share (the exposition, the database-up gauge,
bucket counting); the DSP's metrics are in :mod:`chfw.dsp.intake.metrics`, the receiver's
in :mod:`chfw.supplier.metrics`.

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
took if that is longer (:class:`chfw.shared.recent.Recent`: a read that takes 2 s over
a big outbox is made at most every 20 s), one read at a time:

- ``chfw_outbox_alerts{alert_code,user_id,state}`` -- state waiting (pending, never tried),
  retrying (pending, tried), delivered, dead
- ``chfw_outbox_oldest_due_age_seconds`` -- how long the longest-waiting due alert has waited
  (0 while every pending alert waits for a later retry: not the figure to alert on)
- ``chfw_outbox_oldest_undelivered_age_seconds{user_id}`` -- seconds since the user's oldest
  pending alert was made (due or waiting for a retry): the figure an outage alert hangs on
- ``chfw_service_user_suspended{user_id}`` -- 1 while delivery to the user is suspended
- ``chfw_outbox_delivered_recent{user_id}`` -- delivered in the last hour
- ``chfw_delivery_attempts_total{outcome}`` -- delivered, retry, rejected, dead
- ``chfw_intake_to_delivery_recent_seconds{user_id}`` -- a gauge histogram of the
  intake-to-delivery latency of the last hour's deliveries, and
  ``chfw_intake_to_delivery_recent_quantile_seconds{user_id,quantile}`` (0.5, 0.99)
- ``chfw_backoffice_alerts{alert_code}``, ``chfw_backoffice_rejections``,
  ``chfw_backoffice_lookups_pending`` (supplier side)
- ``chfw_campaigns{state}`` -- firmware campaigns by state, and
  ``chfw_campaign_auto_pauses_total{campaign}`` -- times its error threshold paused it
- ``chfw_metrics_database_up`` -- 0 when the last read failed (the figures are then absent)

**Computed at scrape time** from the intake's signing certificate (:class:`SigningCollector`):

- ``chfw_signing_certificate_expiry_seconds{issuer,serial}`` -- seconds until the
  certificate's notAfter (negative once expired); alert on it falling below 30 days
  (2592000): see docs/deployment.md, key rollover
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    GaugeMetricFamily,
)

# No ``*_created`` series: they double the output and no chfw dashboard or alert uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def install_scrape(app: FastAPI, registry: CollectorRegistry) -> None:
    """Serve ``GET /metrics`` on ``app`` from ``registry`` (one registry per app)."""
    app.state.metrics_registry = registry
    app.include_router(router)


router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics")
def scrape(request: Request) -> Response:
    return metrics_response(request.app.state.metrics_registry)


def metrics_response(registry: CollectorRegistry) -> Response:
    """The text exposition format of everything in ``registry``."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def database_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "chfw_metrics_database_up",
        "1 when the last read of the database succeeded",
        value=1 if up else 0,
    )


def buckets(sorted_values: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative bucket counts of sorted values, with +Inf."""
    out: list[tuple[str, float]] = []
    index = 0
    for bound in bounds:
        while index < len(sorted_values) and sorted_values[index] <= bound:
            index += 1
        out.append((f"{float(bound)}", float(index)))
    out.append(("+Inf", float(len(sorted_values))))
    return out
