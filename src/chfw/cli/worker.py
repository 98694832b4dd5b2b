"""`chfw worker`: deliver outbox alerts to Service User endpoints.

The worker signs with the configured identity (``signing_key``/``signing_cert``):
alerts signed by another one are re-signed before they go out. It refuses to
start when that certificate is expired or not yet valid, warns from 30 days
before it expires, and reloads the identity from the settings on SIGHUP.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer

from chfw.cli._context import engine, fail, run_guarded, settings
from chfw.core.signing import Signer
from chfw.dsp.delivery.monitor import monitor_server
from chfw.dsp.delivery.reporting import WorkerStats
from chfw.dsp.delivery.worker import Worker
from chfw.dsp.schema_check import check_user_schemas
from chfw.dsp.store import outbox
from chfw.dsp.store.errors import translated
from chfw.exceptions import ChfwError
from chfw.shared.config import Settings
from chfw.shared.logs import notice
from chfw.shared.longrunning import start_long_running
from chfw.shared.serving import bind

T = TypeVar("T")


def worker(
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            "--until-idle",
            help="Deliver everything due now, then exit (alerts waiting for a later retry "
            "stay pending).",
        ),
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Rows claimed at a time (default: settings)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve /metrics, /healthz and /readyz on this port (not with --once).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Interface of --metrics-port.")
    ] = "127.0.0.1",
) -> None:
    """Deliver alerts from the outbox until stopped (Ctrl-C or SIGTERM stop gracefully).

    Alerts signed by another identity than the configured signing_key and
    signing_cert (a key rollover) are re-signed on the way out. SIGHUP reloads
    that identity from the settings.
    """
    if once and metrics_port is not None:
        raise fail("--metrics-port serves a running worker: not with --once", 2)
    with run_guarded(service=not once), translated():
        config = settings()
        check_user_schemas(config, engine())  # every user's DUIS version has a schema
        delivery = Worker(engine(), config, batch_size=batch_size, signer=_signer(config))
        if once:
            stats = _run(_drain(delivery))
        else:
            start_long_running()
            sock = None if metrics_port is None else bind(metrics_host, metrics_port)
            notice(
                "worker_started",
                f"chfw worker: delivering from {_database()} (Ctrl-C to stop)",
                database=_database(),
            )
            if sock is not None:
                notice(
                    "worker_monitor",
                    f"chfw worker: /metrics, /healthz, /readyz on "
                    f"http://{metrics_host}:{metrics_port}",
                    port=metrics_port,
                )
            stats = _run(_serve(delivery, sock))
        with engine().begin() as conn:
            counts = outbox.counts(conn)
            next_due = outbox.next_due_at(conn) if counts["pending"] else None
    pending = None
    if next_due is not None:
        pending = (
            f"{counts['pending']} alert(s) still pending ({counts['retrying']} retrying); "
            f"next attempt due at {next_due.isoformat(timespec='seconds')}"
        )
    if once:  # a tool's answer, on stdout
        typer.echo(stats.summary())
        if pending:
            typer.echo(pending)
        return
    notice("worker_stopped", stats.summary(), stats=stats.as_dict())
    if pending:
        notice("worker_pending", pending, pending=counts["pending"], retrying=counts["retrying"])


def _signer(config: Settings) -> Signer | None:
    """The configured signing identity (refused when expired), or None when not configured."""
    from chfw.dsp.runtime import certificate_summary, expiry_warning, load_signer

    if not config.signing_key and not config.signing_cert:
        notice(
            "worker_signing_off",
            "chfw worker: signing_key and signing_cert are not set: alerts are sent as signed at "
            "intake and never re-signed (set them as for `chfw serve` to re-sign after a key "
            "rollover)",
            level="warning",
        )
        return None
    signer = load_signer(config)
    warning = expiry_warning(signer, config.signing_cert)
    if warning:
        notice("signing_certificate_expires_soon", warning, level="warning")
    notice("worker_signing", f"chfw worker: signing with {certificate_summary(signer)}")
    return signer


def _reload_signer(delivery: Worker) -> None:
    """SIGHUP: read the settings and the signing files again; keep the old identity on error."""
    settings.cache_clear()
    try:
        signer = _signer(settings())
    except ChfwError as exc:
        notice(
            "worker_signing_not_reloaded",
            f"chfw worker: signing identity not reloaded, still the old one: {exc}",
            level="error",
        )
        return
    if signer is not None:
        delivery.use_signer(signer)


def _database() -> str:
    from chfw.cli._store import database_label

    return database_label()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (it is a chfw dependency): less CPU per POST."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _drain(delivery: Worker) -> WorkerStats:
    async with delivery:
        return await delivery.run_until_idle()


async def _serve(delivery: Worker, sock: socket.socket | None) -> WorkerStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        notice("worker_stopping", "stopping: finishing the POSTs in flight (again to quit at once)")
        stop.set()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop)
    loop.add_signal_handler(signal.SIGHUP, _reload_signer, delivery)
    if sock is None:
        async with delivery:
            return await delivery.run_forever(stop)
    server = monitor_server(delivery, sock)
    serving = asyncio.create_task(server.serve([sock]))
    try:
        async with delivery:
            return await delivery.run_forever(stop)
    finally:
        server.should_exit = True
        await serving
