"""`chfw worker`: deliver outbox alerts to Service User endpoints."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer

from chfw.cli._context import engine, run_guarded, settings
from chfw.delivery.worker import Worker, WorkerStats
from chfw.longrunning import start_long_running
from chfw.store import outbox
from chfw.store.errors import translated

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
) -> None:
    """Deliver alerts from the outbox until stopped (Ctrl-C or SIGTERM stop gracefully)."""
    with run_guarded(), translated():
        config = settings()
        delivery = Worker(engine(), config, batch_size=batch_size)
        if once:
            stats = _run(_drain(delivery))
        else:
            start_long_running()
            typer.echo(f"chfw worker: delivering from {_database()} (Ctrl-C to stop)", err=True)
            stats = _run(_serve(delivery))
        typer.echo(stats.summary())
        with engine().begin() as conn:
            counts = outbox.counts(conn)
            next_due = outbox.next_due_at(conn) if counts["pending"] else None
    if next_due is not None:
        typer.echo(
            f"{counts['pending']} alert(s) still pending ({counts['retrying']} retrying); "
            f"next attempt due at {next_due.isoformat(timespec='seconds')}"
        )


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


async def _serve(delivery: Worker) -> WorkerStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        typer.echo("stopping: finishing the POSTs in flight (again to quit at once)", err=True)
        stop.set()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop)
    async with delivery:
        return await delivery.run_forever(stop)
