"""`chfw worker --metrics-port P`: the worker's own /metrics, /healthz and /readyz.

A small HTTP server on the worker's event loop (so /healthz answers only while the
loop does). /metrics holds what this worker did since it started -- attempts by
outcome, POSTs in flight, documents re-signed -- and its signing certificate's
expiry; the outbox's figures (alerts per state and user, oldest undelivered) come
from the intake's /metrics, which reads them from the database for all workers.
/healthz and /readyz are :mod:`chfw.shared.health`'s.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator, Iterator

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chfw import __version__
from chfw.dsp.delivery.worker import Worker
from chfw.dsp.intake.metrics import SigningCollector
from chfw.dsp.store import migrate
from chfw.shared import health
from chfw.shared.health import Readiness
from chfw.shared.metrics import install_scrape


class WorkerCollector(Collector):
    """This worker's counts since it started, read from it at each scrape."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        stats = self.worker.stats
        attempts = CounterMetricFamily(
            "chfw_worker_attempts",
            "Delivery attempts this worker settled, by outcome",
            labels=["outcome"],
        )
        for outcome, count in (
            ("delivered", stats.delivered),
            ("retry", stats.retried),
            ("rejected", stats.rejected),
            ("dead", stats.expired),
        ):
            attempts.add_metric([outcome], count)
        yield attempts
        yield CounterMetricFamily(
            "chfw_worker_claimed", "Alerts this worker claimed", value=stats.claimed
        )
        yield CounterMetricFamily(
            "chfw_worker_resigned",
            "Documents this worker signed again with the current identity",
            value=stats.resigned,
        )
        yield GaugeMetricFamily(
            "chfw_worker_in_flight", "POSTs this worker has under way", value=self.worker.in_flight
        )


def monitor_app(worker: Worker) -> FastAPI:
    """The worker's monitoring app: /metrics, /healthz, /readyz."""
    app = FastAPI(title="chfw worker", version=__version__, docs_url=None, redoc_url=None)
    registry = CollectorRegistry()
    registry.register(WorkerCollector(worker))
    signer = worker.signer
    if signer is not None:
        registry.register(SigningCollector(signer.certificate))
    install_scrape(app, registry)
    app.include_router(health.router)
    app.state.readiness = Readiness(
        worker.engine, migrate.CHAIN, signer.certificate if signer is not None else None
    )
    return app


class EmbeddedServer(uvicorn.Server):
    """uvicorn on a loop that is not its own: the worker handles the signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def monitor_server(worker: Worker, sock: socket.socket) -> EmbeddedServer:
    """A server for :func:`monitor_app` on ``sock`` (bound before the worker announces it);
    run it with ``await server.serve([sock])`` and stop it with ``should_exit = True``."""
    config = uvicorn.Config(
        monitor_app(worker), log_level="warning", access_log=False, lifespan="off", log_config=None
    )
    return EmbeddedServer(config)
