"""The delivery worker: drain the outbox to Service User endpoints.

One asyncio loop does three things, overlapped so none waits on another:

1. **claim** a batch of due rows (a short transaction in a thread), only when
   the local queue has fallen below half a batch;
2. **POST** each row as its own task, at most ``max_in_flight`` at a time per
   endpoint URL (the user's setting, else ``delivery_max_in_flight``), over
   keep-alive connections (:mod:`chfw.dsp.delivery.transport`);
3. **settle** finished attempts in batches (one short transaction in a
   thread): 2xx delivered, 400/413 dead, others retried per
   :class:`~chfw.shared.retry.RetryPolicy` or dead past its horizon.

All state is in the database. A worker that is killed leaves leased rows
that any worker reclaims once the lease runs out; a worker that is asked to
stop finishes its POSTs in flight, settles them and gives back the leases of
rows it had not started. Leases of rows still queued behind a slow endpoint
are renewed every third of ``lease_seconds``, and a user with four times its
concurrency (at most half a batch) already queued locally is left out of the
next claims, so one slow endpoint cannot hold a whole batch.

When an endpoint that was failing answers 2xx again -- the alert delivered had
failed before, or this worker saw the user's last ``_DOWN_AFTER`` or more
attempts fail in a row -- every pending row
of that user waiting for a later try is made due at once
(:func:`chfw.dsp.store.outbox.make_due`), in the same transaction as the
result: a supplier back after an outage gets its backlog in seconds, not at
each row's next backoff. One failure between successes is taken for a problem
of that alert, not of the endpoint: it keeps its backoff (else an alert its
endpoint always refuses would be retried on every other alert's success).

Permanent refusals (400/413) are counted per user with the results
(:func:`chfw.dsp.store.suspension.note_refusals`); ``suspend_after_refusals``
in a row suspend delivery to that user: its alerts stay pending until an
operator resumes it (``chfw users resume``).

Every alert goes out signed by the worker's signing identity (``signer``, the
configured ``signing_key``/``signing_cert``): a row whose stored document names
another certificate in its KeyInfo -- signed before a key rollover, or a dead
letter replayed since -- is re-signed just before its POST (same canonical
content, same ResponseID, a new Signature; :class:`chfw.core.signing.Resigner`), and
the re-signed document is written back with the attempt's result, so a retry
does not sign it again. Checking a row that is already current costs one
``rfind`` and one ``endswith`` on its bytes. :meth:`Worker.use_signer` switches
identity while running (`chfw worker` does on SIGHUP).

Each database call is one short transaction. On PostgreSQL it runs in a
thread (``asyncio.to_thread``), so the POSTs in flight go on during its round
trips. On SQLite the loop waits for the write lock with ``asyncio.sleep`` and
then runs the transaction on its own thread: in a thread, the transaction held
the lock while it waited for the GIL (see
:func:`chfw.shared.db.engine.writing_on_loop`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from chfw.core.clock import utc_now
from chfw.core.signing import Resigner, Signer
from chfw.dsp.delivery.reporting import (
    WorkerStats,
    dashed,
    expired_reason,
    insecure_reason,
)
from chfw.dsp.delivery.sender import (
    SendResult,
    TransportFactory,
    Transports,
    send,
    tls_for_alert,
)
from chfw.dsp.store import outbox as store
from chfw.dsp.store import suspension
from chfw.dsp.store.outbox import AttemptResult, ClaimedAlert
from chfw.exceptions import ConfigError, SigningError
from chfw.shared.config import Settings
from chfw.shared.db.engine import writing_on_loop
from chfw.shared.retry import RetryPolicy

log = structlog.get_logger("chfw.dsp.delivery")

Clock = Callable[[], datetime]
P = ParamSpec("P")
T = TypeVar("T")

_TICK = 0.02  # seconds between settles/claims while busy: batches writes, bounds latency
_REPORT_EVERY = 30.0  # seconds between progress log lines of a long run
_QUEUE_FACTOR = 4  # a user's rows queued here, in multiples of its concurrency, before skipping
SLOW_CLAIM_SECONDS = 0.5  # a claim this slow (PostgreSQL) refreshes the outbox's statistics
REFRESH_EVERY_SECONDS = 300.0  # ... at most this often
_DOWN_AFTER = 2  # failures in a row after which a success means "the endpoint is back"
# A user's waiting rows are made due at most this often: the first success after an outage
# makes them all due; the successes that follow (its backlog going out) need not again.
_RECOVERY_EVERY = 5.0  # seconds


class Worker:
    """Claims due outbox rows and delivers them; see the module docstring.

    ``transport_factory`` makes one :class:`~chfw.dsp.delivery.sender.DeliveryTransport` per
    TLS set-up (default: a :class:`~chfw.dsp.delivery.transport.KeepAliveTransport`, and
    ``HTTPS_PROXY`` refused here, at start; tests pass fakes); ``clock`` gives "now" as aware
    UTC (tests pass a controllable one instead of sleeping); ``rng`` drives
    the retry jitter. ``signer``: the current signing identity; documents
    signed by another are re-signed before they are sent (None: sent as stored).
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        transport_factory: TransportFactory | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        policy: RetryPolicy | None = None,
        batch_size: int | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.engine = engine
        self._resigner = Resigner(signer) if signer is not None else None
        self._resigned: dict[int, bytes] = {}  # outbox id -> re-signed document, until settled
        self.settings = settings
        self.batch_size = max(1, batch_size or settings.worker_batch_size)
        self.policy = policy or RetryPolicy.from_settings(settings)
        self._clock = clock or utc_now
        self._rng = rng or random.Random()
        self._transports = Transports(transport_factory) if transport_factory else Transports()
        self._timeout = settings.delivery_timeout_seconds
        self._low_water = self.batch_size // 2
        self._flush_size = max(1, min(self.batch_size // 2, 250))
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._user_cap: dict[str, int] = {}
        self._queued: Counter[str] = Counter()  # per user hex: claimed here, POST not finished
        self._inflight: dict[int, ClaimedAlert] = {}
        self._unsettled: set[int] = set()  # claimed here and not yet written back
        self._results: list[AttemptResult] = []
        self._failing: Counter[str] = Counter()  # user (hex) -> failures in a row seen here
        self._recovered: dict[int, str] = {}  # outbox id -> user (hex): delivered, endpoint back
        self._refused: set[str] = set()  # users (hex) refused here since their last 2xx
        self._runs: dict[int, str] = {}  # outbox id -> user (hex): a result for its refusal run
        self._made_due: dict[str, float] = {}  # user (hex) -> monotonic time of its last make_due
        self._unstarted: list[int] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress: asyncio.Event | None = None
        self._stopping = False
        self._stats = WorkerStats()
        self._analyzed_at: float | None = None  # monotonic time of the last statistics refresh
        self._on_loop = engine.dialect.name == "sqlite"  # transactions on the loop's thread

    @property
    def stats(self) -> WorkerStats:
        """What the current (or last) run has done so far."""
        return self._stats

    @property
    def in_flight(self) -> int:
        """Alerts claimed here whose POST has not finished."""
        return len(self._inflight)

    @property
    def signer(self) -> Signer | None:
        return self._resigner.signer if self._resigner is not None else None

    def use_signer(self, signer: Signer) -> None:
        """Sign with ``signer`` from now on: the POSTs that start after this are re-signed
        by it where they were signed by another identity (also those signed with the
        previous one)."""
        self._resigner = Resigner(signer)

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP transports (their keep-alive connections)."""
        await self._transports.aclose()

    # --- the two ways to run ------------------------------------------------------------------

    async def run_until_idle(self) -> WorkerStats:
        """Deliver everything due now and everything that becomes claimable meanwhile; return.

        Rows whose retry lies in the future stay pending for a later run.
        """
        return await self._run(stop=None)

    async def run_forever(self, stop: asyncio.Event) -> WorkerStats:
        """Poll every ``worker_poll_seconds`` (not at all while busy) until ``stop`` is set."""
        return await self._run(stop=stop)

    # --- the loop -----------------------------------------------------------------------------

    async def _run(self, stop: asyncio.Event | None) -> WorkerStats:
        self._stats = stats = WorkerStats()
        self._progress = asyncio.Event()
        self._stopping = False
        started = time.perf_counter()
        watcher = asyncio.create_task(self._watch(stop)) if stop is not None else None
        try:
            await self._loop(until_idle=stop is None)
        finally:
            self._stopping = True
            if watcher is not None:
                watcher.cancel()
            await self._wind_down()
            stats.seconds = time.perf_counter() - started
        log.info("delivery_run", **stats.as_dict())
        return stats

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping = True
        self._wake()

    async def _loop(self, until_idle: bool) -> None:
        poll = self.settings.worker_poll_seconds
        lease_renew_every = self.settings.lease_seconds / 3
        last_flush = last_claim = last_renew = last_report = time.monotonic()
        reported = 0
        backoff = poll
        full = False
        drained = False  # the last claim found nothing: wait a poll interval before the next
        while not self._stopping:
            now = time.monotonic()
            if now - last_report >= _REPORT_EVERY and self._stats.settled != reported:
                log.info(
                    "delivery_progress", **self._stats.as_dict(), in_flight=len(self._inflight)
                )
                last_report, reported = now, self._stats.settled
            claimed: int | None = None
            try:
                if self._unsettled and now - last_renew >= lease_renew_every:
                    await self._renew_leases()
                    last_renew = now
                flush = bool(self._results) and (
                    len(self._results) >= self._flush_size
                    or len(self._inflight) <= self._low_water
                    or now - last_flush >= _TICK
                )
                # While POSTs are in flight, claim again every tick -- unless the last claim
                # came back empty: then once per poll interval, as when idle, so that a
                # trickle of alerts does not cost every worker a claim query per tick.
                pause = max(poll, _TICK) if drained else _TICK
                claim = len(self._inflight) <= self._low_water and (
                    not self._inflight or full or now - last_claim >= pause
                )
                if claim:
                    # Settling and claiming share one transaction when both are due: on
                    # SQLite each transaction waits its turn for the write lock.
                    room = self.batch_size - len(self._inflight)
                    claimed = await self._claim(room, settle=flush)
                    full = claimed == room
                    drained = claimed == 0
                    last_claim = now
                elif flush:
                    await self._flush()
                if flush:
                    last_flush = now
            except sa.exc.DBAPIError as exc:
                if until_idle:
                    raise
                log.warning("delivery_database_unavailable", error=str(exc), retry_in=backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = poll
            if claimed is not None and full:
                continue  # a full batch: more may be due, claim again as soon as there is room
            if self._inflight or self._results:
                await self._sleep(_TICK)
            elif claimed == 0 and until_idle:
                return  # nothing in flight, nothing to write, nothing claimable
            else:
                await self._sleep(poll)

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when a POST finishes that matters, or a stop is asked."""
        assert self._progress is not None
        self._progress.clear()
        try:
            async with asyncio.timeout(seconds):
                await self._progress.wait()
        except TimeoutError:
            pass

    def _wake(self) -> None:
        if self._progress is not None:
            self._progress.set()

    async def _wind_down(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        try:
            if self._results:
                await self._flush()
            if self._unstarted:
                ids, self._unstarted = self._unstarted, []
                await self._write(store.release, ids, self._clock())
                self._unsettled.difference_update(ids)
                self._stats.released += len(ids)
        except sa.exc.DBAPIError as exc:
            log.error("delivery_writeback_failed_at_stop", error=str(exc), leases="will expire")

    # --- database (each call one short transaction) --------------------------------------------

    async def _write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(conn, *args)`` in one write transaction: on SQLite on the loop's thread once the
        lock is ours (:func:`~chfw.shared.db.engine.writing_on_loop`), elsewhere in a thread,
        so that
        the POSTs in flight go on while the database answers."""
        if self._on_loop:
            async with writing_on_loop(self.engine) as conn:
                return fn(conn, *args, **kwargs)
        return await asyncio.to_thread(partial(self._in_transaction, fn, *args, **kwargs))

    def _in_transaction(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self.engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    def _record(self, conn: Connection, results: list[AttemptResult]) -> None:
        """Write back attempt results; a user whose endpoint is back gets its waiting rows due."""
        store.record_results(conn, results)
        now = self._clock()
        runs: dict[str, suspension.RefusalRun] = {}
        for result in results:
            user = self._runs.get(result.outbox_id)
            if user is not None:
                run = runs.setdefault(user, suspension.RefusalRun())
                if result.outcome == "delivered":
                    run.delivered()
                else:
                    run.refusal(result.error, result.attempted_at)
        threshold = self.settings.suspend_after_refusals
        for stopped in suspension.note_refusals(conn, runs, now, threshold):
            log.error(
                "delivery_suspended",
                user_id=dashed(stopped.user_id),
                refusals=stopped.refusals,
                reason=stopped.reason,
                hint="its alerts stay pending; fix the cause, then `chfw users resume USER_ID`",
            )
        back = {self._recovered[r.outbox_id] for r in results if r.outbox_id in self._recovered}
        moment = time.monotonic()
        for user in sorted(back):
            last = self._made_due.get(user)
            if last is not None and moment - last < _RECOVERY_EVERY:
                continue  # made due moments ago: what is waiting now is new failures' backoff
            self._made_due[user] = moment
            made_due = store.make_due(conn, now, user)
            if made_due:
                log.info("endpoint_back", user_id=dashed(user), made_due=made_due)

    def _settle_and_claim(
        self, conn: Connection, room: int, exclude: list[str], results: list[AttemptResult]
    ) -> Sequence[Any]:
        self._record(conn, results)
        return store.claim_due_rows(
            conn, self._clock(), room, self.settings.lease_seconds, exclude_users=exclude
        )

    def _refresh_statistics(self, took: float, claimed: int) -> None:
        """A slow claim most often means stale planner statistics (see
        :func:`chfw.dsp.store.outbox.refresh_statistics`): refresh them, at most every few
        minutes, rather than run slow claims until autovacuum gets round to it."""
        now = time.monotonic()
        if self._analyzed_at is not None and now - self._analyzed_at < REFRESH_EVERY_SECONDS:
            return
        self._analyzed_at = now
        log.warning(
            "outbox_statistics_refreshed",
            claim_seconds=round(took, 3),
            claimed=claimed,
            hint="a slow claim; if this repeats, look at autovacuum on the outbox table",
        )
        try:
            with self.engine.begin() as conn:
                store.refresh_statistics(conn)
        except sa.exc.DBAPIError as exc:  # the claimed rows must still be dispatched
            log.warning("outbox_statistics_refresh_failed", error=str(exc))

    async def _claim(self, room: int, *, settle: bool = False) -> int:
        """Claim up to ``room`` rows and dispatch them; with ``settle``, write back the
        finished attempts in the same transaction first."""
        exclude = [user for user, n in self._queued.items() if n >= self._user_cap.get(user, n + 1)]
        nothing: list[AttemptResult] = []
        writing_back: AbstractContextManager[list[AttemptResult]] = (
            self._writing_back() if settle else nullcontext(nothing)
        )
        started = time.monotonic()
        with writing_back as results:
            rows = await self._write(self._settle_and_claim, room, exclude, results)
        took = time.monotonic() - started
        alerts = store.claimed_alerts(rows)  # built after the commit: the lock is free again
        if took >= SLOW_CLAIM_SECONDS and self.engine.dialect.name == "postgresql":
            await asyncio.to_thread(self._refresh_statistics, took, len(alerts))
        taken = 0
        for alert in alerts:
            if alert.id in self._unsettled:
                continue  # our own lease ran out and we claimed it again: already being handled
            self._dispatch(alert)
            taken += 1
        self._stats.claimed += taken
        return len(alerts)

    async def _flush(self) -> None:
        with self._writing_back() as results:
            await self._write(self._record, results)

    @contextmanager
    def _writing_back(self) -> Iterator[list[AttemptResult]]:
        """The finished attempts, taken for writing back: settled once the block succeeds,
        kept for the next try when it fails."""
        results, self._results = self._results, []
        try:
            yield results
        except BaseException:
            self._results[:0] = results
            raise
        self._unsettled.difference_update(r.outbox_id for r in results)
        for result in results:
            self._recovered.pop(result.outbox_id, None)
            self._runs.pop(result.outbox_id, None)

    async def _renew_leases(self) -> None:
        until = self._clock() + timedelta(seconds=self.settings.lease_seconds)
        ids = sorted(self._unsettled)
        await self._write(store.extend_leases, ids, until)

    # --- delivering one alert -----------------------------------------------------------------

    def _dispatch(self, alert: ClaimedAlert) -> None:
        user = alert.user_id.hex
        self._inflight[alert.id] = alert
        self._unsettled.add(alert.id)
        self._queued[user] += 1
        limit = alert.max_in_flight or self.settings.delivery_max_in_flight
        self._user_cap[user] = max(1, min(limit * _QUEUE_FACTOR, self.batch_size // 2))
        task = asyncio.create_task(self._deliver(alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _limit(self, url: str, alert: ClaimedAlert) -> asyncio.Semaphore:
        semaphore = self._limits.get(url)
        if semaphore is None:
            limit = alert.max_in_flight or self.settings.delivery_max_in_flight
            semaphore = self._limits[url] = asyncio.Semaphore(max(1, limit))
        return semaphore

    async def _deliver(self, alert: ClaimedAlert) -> None:
        try:
            result = await self._attempt(alert)
            if result is not None:
                self._results.append(self._judge(alert, result))
        except Exception as exc:  # a bug must not lose the row: it is retried like a failure
            log.exception(
                "delivery_internal_error",
                outbox_id=alert.id,
                response_id=alert.response_id,
                device_id=str(alert.device_id),
            )
            failure = SendResult("retryable", None, f"internal error: {exc!r}", 0.0)
            self._results.append(self._judge(alert, failure))
        finally:
            del self._inflight[alert.id]
            self._queued[alert.user_id.hex] -= 1
            if len(self._results) >= self._flush_size or len(self._inflight) <= self._low_water:
                self._wake()

    async def _attempt(self, alert: ClaimedAlert) -> SendResult | None:
        """POST the alert; None when stopping before it started (its lease is given back)."""
        if not alert.user_known:
            return SendResult(
                "retryable",
                None,
                f"user {alert.user_id} is not a registered Service User (add it, then the alert "
                "is delivered on its next try)",
                0.0,
            )
        url = alert.endpoint_url
        if not url:
            return SendResult(
                "retryable", None, f"user {alert.user_id} has no endpoint URL configured", 0.0
            )
        if url[:7].lower() == "http://" and not alert.allow_insecure_http:
            return SendResult("retryable", None, insecure_reason(alert, url), 0.0)
        try:
            transport = self._transports.get(tls_for_alert(alert, self.settings))
        except ConfigError as exc:
            return SendResult("retryable", None, f"user {alert.user_id}: {exc}", 0.0)
        try:
            document = self._signed_now(alert)
        except SigningError as exc:
            return SendResult(
                "retryable",
                None,
                f"cannot re-sign with the current signing identity: {exc}",
                0.0,
            )
        async with self._limit(url, alert):
            if self._stopping:
                self._unstarted.append(alert.id)
                self._resigned.pop(alert.id, None)
                return None
            return await send(transport, url, document, self._timeout)

    def _signed_now(self, alert: ClaimedAlert) -> bytes:
        """The document to POST: as stored when signed by the current identity (or when no
        signer is configured, or the stored document carries no Signature), else re-signed
        and kept to be written back with the result."""
        resigner, document = self._resigner, alert.document
        if resigner is None or resigner.is_current(document) or not resigner.is_signed(document):
            return document
        document = resigner.resign(document)
        self._resigned[alert.id] = document
        self._stats.resigned += 1
        return document

    def _judge(self, alert: ClaimedAlert, result: SendResult) -> AttemptResult:
        outcome = self._outcome(alert, result)
        document = self._resigned.pop(alert.id, None)
        return outcome if document is None else replace(outcome, document=document)

    def _outcome(self, alert: ClaimedAlert, result: SendResult) -> AttemptResult:
        now = self._clock()
        stats = self._stats
        user = alert.user_id.hex
        if result.verdict == "delivered":
            stats.delivered += 1
            if alert.attempts > 0 or self._failing[user] >= _DOWN_AFTER:
                self._recovered[alert.id] = user
            self._failing.pop(user, None)
            if alert.refusals_in_a_row or user in self._refused:
                self._runs[alert.id] = user
                self._refused.discard(user)
            return AttemptResult(
                alert.id, "delivered", now, result.status_code, None, result.duration_ms
            )
        if result.verdict == "permanent":
            stats.rejected += 1
            self._refused.add(user)
            self._runs[alert.id] = user
            log.warning(
                "alert_rejected",
                response_id=alert.response_id,
                device_id=str(alert.device_id),
                user_id=str(alert.user_id),
                error=result.error,
            )
            return AttemptResult(
                alert.id, "rejected", now, result.status_code, result.error, result.duration_ms
            )
        attempts = alert.attempts + 1
        retry_at = self.policy.decide(alert.created_at, attempts, now, self._rng)
        if retry_at is None:
            stats.expired += 1
            error = expired_reason(alert, attempts, now, self.policy.horizon, result.error)
            log.warning(
                "alert_expired",
                response_id=alert.response_id,
                device_id=str(alert.device_id),
                user_id=str(alert.user_id),
                error=error,
            )
            return AttemptResult(
                alert.id, "dead", now, result.status_code, error, result.duration_ms
            )
        stats.retried += 1
        self._failing[user] += 1
        return AttemptResult(
            alert.id,
            "retry",
            now,
            result.status_code,
            result.error,
            result.duration_ms,
            next_attempt_at=retry_at,
        )
