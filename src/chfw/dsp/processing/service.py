"""The application service: one batch at a time per slot, decided under the lock or before it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog
from sqlalchemy.engine import Engine

from chfw.core.clock import utc_now
from chfw.core.domain import (
    ActivationOutcome,
)
from chfw.core.gbcs import decode_outcome
from chfw.dsp.alerts import (
    AlertBuilder,
)
from chfw.dsp.processing.batch import Batch
from chfw.dsp.processing.results import SubmissionResult, log_batch
from chfw.dsp.processing.steps import CounterSource
from chfw.exceptions import (
    ConfigError,
    GbcsDecodeError,
)
from chfw.shared.db.engine import reading

log = structlog.get_logger("chfw.dsp.intake")


class ActivationService:
    """Processes CS06 outcomes posted by CSPs."""

    def __init__(
        self,
        engine: Engine,
        builder: AlertBuilder,
        counters: CounterSource,
        clock: Callable[[], datetime] = utc_now,
        *,
        concurrent_batches: int = 1,
        plan_under_lock: bool | None = None,
    ) -> None:
        if concurrent_batches < 1:
            raise ConfigError(f"intake_concurrency must be at least 1, got {concurrent_batches}")
        self.engine = engine
        self.builder = builder
        self.counters = counters
        self.clock = clock
        # How many batches this process works on at once; the others queue here and
        # start the moment one commits. Python runs one thread at a time, so two
        # batches side by side do not add CPU: they hand the interpreter to each other
        # at every parse, signature and query, and each handover costs CPU on a busy
        # machine (measured on PostgreSQL: ~15 % more intake CPU per alert with two
        # than with one; on SQLite ~35 %, where they also fight over the one write
        # lock). More intake processes add throughput; more than one batch per process
        # only helps where the database is far and its round trips dominate. SQLite
        # allows one writer, so there it is always one.
        if engine.dialect.name == "sqlite":
            concurrent_batches = 1
        self.concurrent_batches = concurrent_batches
        self._batch_slots = threading.BoundedSemaphore(concurrent_batches)
        # Where a batch is decided and its alerts built: see submit(). By default
        # under the CHs' row locks on PostgreSQL, before the lock on SQLite.
        if plan_under_lock is None:
            plan_under_lock = engine.dialect.name == "postgresql"
        self.plan_under_lock = plan_under_lock
        # Called with each batch's results after its commit (e.g. chfw.shared.metrics counts them).
        self.observers: list[Callable[[Sequence[SubmissionResult]], None]] = []

    def submit(self, payloads: Sequence[bytes | str], csp: str | None) -> list[SubmissionResult]:
        """Process a batch; each payload gets its own result, in order, committed together.

        The batch is processed set-wise (one query per kind of read, one
        executemany per kind of write) but decided message by message, in
        order, so two outcomes for one CH in one batch behave exactly as if
        they had been posted one after the other.

        Where the costly part -- rendering, validating and signing every
        alert -- happens depends on what the write lock holds up
        (``plan_under_lock``):

        - On SQLite the lock is the whole database, so the batch is decided
          and built *before* the write transaction, from a read of the CHs'
          state, and the lock is held only to check that state again and
          write. If a CH's firmware or processed outcomes changed in between
          (another intake process took an outcome for it), that CH's messages
          are decided again inside the transaction, from the locked state;
          alerts built for them first are dropped, their ResponseID counters
          skipped (unique, not dense). Registration data (meter points, DUIS
          versions) is taken as read. Deciding under the lock on SQLite too was
          measured (``bench/bench_pipeline.py``, issue 21, docs/performance.md):
          12-15 % fewer alerts/s and twice the latency, the worker's writes
          waiting behind every batch's signing. Both ways are tested on both
          databases (``tests/dsp/test_processing.py``).
        - On PostgreSQL the lock is the batch's CH rows, which hold up only
          another batch naming one of the same CHs (it waits for this one to
          commit, then finds the outcome processed). There the CHs are locked
          first and the batch is decided and built inside the transaction:
          one read of their state instead of two, ~60 µs less CPU per alert
          between the intake and the database (docs/performance.md). The
          ResponseID counters the batch may need are reserved beforehand, in
          a transaction of their own, so that the counter row is not held
          for the length of the batch.
        """
        with self._batch_slots:
            results = self._process(payloads, csp)
        log_batch(results, csp)
        for observe in self.observers:
            observe(results)
        return results

    def _process(self, payloads: Sequence[bytes | str], csp: str | None) -> list[SubmissionResult]:
        now = self.clock()
        decoded: list[ActivationOutcome | GbcsDecodeError] = []
        for payload in payloads:
            try:
                decoded.append(decode_outcome(payload))
            except GbcsDecodeError as exc:
                decoded.append(exc)
        batch = Batch(self.builder, self.counters, csp, now, payloads, decoded)
        if self.plan_under_lock:
            self.counters.reserve(_COUNTERS_PER_OUTCOME * len(payloads))
            with self.engine.begin() as conn:
                results = batch.write(conn, batch.plan(batch.read(conn, lock=True), conn))
        else:
            with reading(self.engine) as conn:
                inputs = batch.read(conn)
            plan = batch.plan(inputs, None)  # no transaction open: counters come from their own
            with self.engine.begin() as conn:
                locked = batch.read_state(conn)
                changed = locked.changed_since(inputs.state)
                if changed:
                    fresh = batch.inputs_after_change(conn, inputs, locked, changed)
                    plan = batch.replan(plan, fresh, changed, conn)
                results = batch.write(conn, plan)
        for paused in batch.paused:  # committed: the campaign is paused now
            log.warning("campaign_paused", campaign=paused.campaign, reason=paused.reason)
        return results


# ResponseID counters reserved per message before a write transaction that builds a
# batch's alerts: a CH has one or two Responsible Suppliers (electricity, gas), rarely
# more. A batch that needs more still gets them (CounterSource.take).
_COUNTERS_PER_OUTCOME = 2
