"""The N999 follow-up: fetch from the DSP the firmware version an N999 could not carry.

A Service User on DUIS below 5.1 gets an N999 (DUISVersionMismatch) in place
of an N64: it names the CH but not its new firmware version. The back office
records the activation as "version unknown" (``bo_hubs.lookup_pending``);
this module asks the DSP's inventory read endpoint
(``GET /su/v1/inventory/{device_id}``, :mod:`chfw.dsp.intake.inventory_api`)
for the version and records it, retrying with backoff until it gets one.

:class:`LookupWorker` runs inside the receiver service (:func:`run_with`
ties it to the app's lifespan; the receiver's ``on_lookup_needed`` hook
wakes it as soon as an N999 is recorded) and sweeps every pending CH
periodically, so lookups left over by a restart or a DSP outage are done too.
``chfw receiver lookups --once`` runs one sweep from the command line.

Backoff is in memory (full jitter, doubling from ``initial`` to ``maximum``
seconds, never giving up): a restarted worker simply tries every pending CH
once more at start. A failure that is the CH's own (404, no version yet, a
malformed entry) backs that CH off alone. A failure of the DSP as a whole
(our token refused, the DSP unreachable, its TLS refused, a 429 or 5xx) would
fail every CH alike, so it pauses every look-up behind one shared back-off:
one log line says so (``dsp_lookups_paused``, with what to do), a single CH is
tried when the pause ends, and ``dsp_lookups_resumed`` says when it answers.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
from fastapi import FastAPI
from sqlalchemy.engine import Connection, Engine

from chfw.core.clock import utc_now
from chfw.core.domain import DeviceId, FirmwareVersion
from chfw.shared.db.engine import reading
from chfw.shared.retry import RetryPolicy
from chfw.supplier import backoffice
from chfw.supplier.dsp_answers import (
    INVENTORY_PATH,
    InventoryLookupError,
    status_problem,
    transport_problem,
)
from chfw.supplier.dsp_client import client_options, snippet
from chfw.supplier.schema import bo_hubs

__all__ = [
    "InventoryClient",
    "InventoryLookupError",
    "LookupStats",
    "LookupWorker",
    "count_pending",
    "pending_page",
    "run_with",
]

log = structlog.get_logger("chfw.supplier.lookup")

DEFAULT_BACKOFF = RetryPolicy(initial=2.0, maximum=600.0, horizon=math.inf)


class InventoryClient:
    """Reads CHs' inventory entries from the DSP as one Service User (its bearer token).

    TLS verification is always on for https: ``ca_bundle`` (default: the
    system trust store) verifies the DSP; ``client_cert``/``client_key`` add
    mutual TLS. ``transport`` swaps the network for tests
    (:class:`httpx.MockTransport`).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ca_bundle: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        options = client_options(  # plain http is refused earlier, without --dsp-allow-http
            base_url,
            token,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            client_key=client_key,
            allow_http=True,
            timeout=timeout,
        )
        self.base_url: str = options["base_url"]
        self._client = httpx.AsyncClient(transport=transport, **options)

    async def __aenter__(self) -> InventoryClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def url_for(self, device_id: DeviceId) -> str:
        return self.base_url + INVENTORY_PATH.format(device_id=device_id)

    async def fetch(self, device_id: DeviceId) -> FirmwareVersion | None:
        """The CH's active firmware per the DSP; None when the inventory has none recorded.

        Every failure (network, TLS, refused token, not found, a malformed
        answer) is raised as :class:`InventoryLookupError` with what to check.
        """
        url = self.url_for(device_id)
        try:
            response = await self._client.get(INVENTORY_PATH.format(device_id=device_id))
        except httpx.HTTPError as exc:
            raise transport_problem(self.base_url, exc) from exc
        if response.status_code != 200:
            raise status_problem(url, device_id, response)
        try:
            entry = response.json()
            text = entry["firmware_version"]
            return None if text is None else FirmwareVersion.parse(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise InventoryLookupError(
                f"GET {url}: the answer is not an inventory entry with a firmware_version "
                f"({exc}): {snippet(response)}"
            ) from None


@dataclass(frozen=True, slots=True)
class LookupStats:
    """What one pass did: versions recorded, lookups failed (to be retried)."""

    fetched: int = 0
    failed: int = 0
    waiting: int = 0  # not tried: the DSP as a whole was failing (paused)

    def __add__(self, other: LookupStats) -> LookupStats:
        return LookupStats(
            self.fetched + other.fetched, self.failed + other.failed, self.waiting + other.waiting
        )


def pending_page(conn: Connection, after: str | None, limit: int) -> list[DeviceId]:
    """CHs waiting for a version, in Device ID order after ``after`` (keyset paging)."""
    query = (
        sa.select(bo_hubs.c.device_id)
        .where(bo_hubs.c.lookup_pending.is_(True))
        .order_by(bo_hubs.c.device_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(bo_hubs.c.device_id > after)
    return [DeviceId.parse(row.device_id) for row in conn.execute(query)]


def count_pending(conn: Connection) -> int:
    query = (
        sa.select(sa.func.count()).select_from(bo_hubs).where(bo_hubs.c.lookup_pending.is_(True))
    )
    return int(conn.execute(query).scalar_one())


class LookupWorker:
    """Fetches and records the versions of every CH with a pending lookup, until none is left.

    :meth:`notify` (thread-safe; the receiver's ``on_lookup_needed``) asks
    for one CH at once; :meth:`run` serves those and sweeps every
    ``sweep_seconds``; :meth:`run_once` is one sweep. Database calls run in
    threads, so the worker can share the receiver's event loop.
    """

    def __init__(
        self,
        engine: Engine,
        client: InventoryClient,
        *,
        backoff: RetryPolicy = DEFAULT_BACKOFF,
        sweep_seconds: float = 60.0,
        concurrency: int = 8,
        page_size: int = 500,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.client = client
        self.backoff = backoff
        self.sweep_seconds = sweep_seconds
        self.page_size = page_size
        self._rng = rng or random.Random()
        self._clock = clock
        self._now = now
        self.concurrency = concurrency
        self._failures: dict[DeviceId, int] = {}
        self._retry_at: dict[DeviceId, float] = {}
        self._notified: set[DeviceId] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self.totals = LookupStats()  # since this worker was made
        # The shared back-off when the DSP as a whole fails (token, network, 5xx).
        self._dsp_failures = 0
        self._dsp_retry_at = -math.inf
        self.dsp_problem: str | None = None

    # -- waking up ---------------------------------------------------------------------------

    def notify(self, device_id: DeviceId) -> None:
        """Look this CH up now (a new N999 was recorded). Safe from any thread."""
        with self._lock:
            self._notified.add(device_id)
        self._poke()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the lookups in progress. Safe from any thread."""
        self._stopping = True
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(wake.set)

    def _take_notified(self) -> list[DeviceId]:
        with self._lock:
            taken, self._notified = self._notified, set()
        for device in taken:  # a fresh N999: no backoff from an earlier activation
            self._failures.pop(device, None)
            self._retry_at.pop(device, None)
        return sorted(taken, key=lambda device: device.hex)

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve notifications and sweep periodically until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        next_sweep = self._clock()  # sweep at start: lookups a restart left pending
        log.info("lookups_started", dsp=self.client.base_url, sweep_seconds=self.sweep_seconds)
        while not self._stopping:
            try:
                notified = self._take_notified()
                if notified:
                    await self.lookup(notified)
                if self._clock() >= self._next_due(next_sweep):
                    await self.run_once()
                    next_sweep = self._clock() + self.sweep_seconds
            except Exception:  # a database hiccup must not end the follow-up for good
                log.exception("lookup_pass_failed")
                next_sweep = self._clock() + min(self.sweep_seconds, 5.0)
                self._dsp_retry_at = max(self._dsp_retry_at, next_sweep)
            wait = self._next_due(next_sweep) - self._clock()
            if wait > 0 and not self._stopping:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()
        log.info("lookups_stopped")

    def _earliest_retry(self) -> float:
        return min(self._retry_at.values(), default=math.inf)

    def _next_due(self, next_sweep: float) -> float:
        """When to sweep next: at the end of the DSP's pause while it fails as a whole."""
        if self._dsp_failures:
            return self._dsp_retry_at
        return min(next_sweep, self._earliest_retry())

    def paused(self) -> bool:
        """The DSP failed as a whole and its back-off has not passed: nothing is asked."""
        return self._clock() < self._dsp_retry_at

    async def run_once(self) -> LookupStats:
        """One sweep: look up every pending CH whose backoff has passed (all, the first time)."""
        stats = LookupStats()
        after: str | None = None
        still_pending: set[DeviceId] = set()
        while True:
            page = await asyncio.to_thread(self._read_page, after)
            if not page:
                break
            still_pending.update(page)
            now = self._clock()
            due = [device for device in page if self._retry_at.get(device, -math.inf) <= now]
            stats += await self.lookup(due)
            after = page[-1].hex
        for device in set(self._retry_at) - still_pending:  # settled otherwise (a newer N64)
            self._retry_at.pop(device, None)
            self._failures.pop(device, None)
        if not still_pending:  # nothing left to ask: no pause to keep
            self._dsp_failures, self._dsp_retry_at, self.dsp_problem = 0, -math.inf, None
        return stats

    def _read_page(self, after: str | None) -> list[DeviceId]:
        with reading(self.engine) as conn:
            return pending_page(conn, after, self.page_size)

    async def lookup(self, devices: Iterable[DeviceId]) -> LookupStats:
        """Fetch and record these CHs' versions, at most ``concurrency`` at a time.

        While the DSP fails as a whole, none is asked (``waiting``); after such a
        failure, one CH is asked alone first, and the rest only if it answers.
        """
        devices = list(devices)
        limit = asyncio.Semaphore(self.concurrency)
        results: list[bool | None] = []
        if self._dsp_failures and devices:  # the DSP failed last time: probe with one CH
            results.append(await self._lookup_one(devices[0], limit))
            devices = devices[1:]
        results += await asyncio.gather(*(self._lookup_one(device, limit) for device in devices))
        stats = LookupStats(
            fetched=results.count(True), failed=results.count(False), waiting=results.count(None)
        )
        self.totals += stats
        return stats

    def _dsp_failed(self, exc: InventoryLookupError) -> None:
        """The DSP failed as a whole: pause every look-up; one line, not one per CH."""
        if self.paused():  # a look-up that started before the pause: already counted
            return
        self._dsp_failures += 1
        delay = self.backoff.next_delay(self._dsp_failures, self._rng)
        self._dsp_retry_at = self._clock() + delay
        problem = str(exc)
        if problem != self.dsp_problem:
            log.warning(
                "dsp_lookups_paused",
                dsp=self.client.base_url,
                error=problem,
                retry_in_seconds=round(delay, 1),
                note="every N999 look-up waits for the DSP; this line is not repeated per CH",
            )
        self.dsp_problem = problem

    def _dsp_answered(self) -> None:
        if self._dsp_failures:
            log.info("dsp_lookups_resumed", dsp=self.client.base_url, after=self.dsp_problem)
        self._dsp_failures, self._dsp_retry_at, self.dsp_problem = 0, -math.inf, None

    async def _lookup_one(self, device: DeviceId, limit: asyncio.Semaphore) -> bool | None:
        # Backoff bookkeeping stays on the event loop's thread; only database calls go to threads.
        async with limit:
            if self.paused():
                return None
            try:
                version = await self.client.fetch(device)
                if version is None:
                    raise InventoryLookupError(
                        f"the DSP's inventory has no firmware version for CH {device} yet"
                    )
            except InventoryLookupError as exc:
                if exc.whole_dsp:
                    self._dsp_failed(exc)
                    await asyncio.to_thread(self._record_failure, device, str(exc))
                    return False
                self._dsp_answered()
                failures = self._failures.get(device, 0) + 1
                delay = self.backoff.next_delay(failures, self._rng)
                self._failures[device] = failures
                self._retry_at[device] = self._clock() + delay
                await asyncio.to_thread(self._record_failure, device, str(exc))
                log.warning(
                    "version_lookup_failed",
                    device_id=str(device),
                    attempt=failures,
                    retry_in_seconds=round(delay, 1),
                    error=str(exc),
                )
                return False
            self._dsp_answered()
            await asyncio.to_thread(self._record_version, device, version)
            self._failures.pop(device, None)
            self._retry_at.pop(device, None)
            log.info("version_fetched", device_id=str(device), firmware_version=version.hex)
            return True

    def _record_version(self, device: DeviceId, version: FirmwareVersion) -> None:
        with self.engine.begin() as conn:
            backoffice.record_fetched_version(conn, device, version, self._now())

    def _record_failure(self, device: DeviceId, error: str) -> None:
        with self.engine.begin() as conn:
            backoffice.record_lookup_failure(conn, device, error)

    def retry_at(self, device: DeviceId) -> float | None:
        """When (on the worker's clock) this CH is next tried after a failure, if it failed:
        its own back-off, or the DSP's while the DSP fails as a whole."""
        own = self._retry_at.get(device)
        if self._dsp_failures:
            return max(own or -math.inf, self._dsp_retry_at)
        return own


def run_with(app: FastAPI, worker: LookupWorker) -> None:
    """Run ``worker`` in ``app``'s event loop for as long as the app is served (its lifespan).

    The client is closed when the app shuts down. Wire ``worker.notify`` as
    the receiver's ``ReceiverConfig.on_lookup_needed`` so that N999s are
    followed up at once rather than at the next sweep.
    """
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        task = asyncio.create_task(worker.run(), name="chfw-n999-lookups")
        try:
            async with inner(app_) as state:
                yield state
        finally:
            worker.stop()
            await task
            await worker.client.aclose()

    app.router.lifespan_context = lifespan
